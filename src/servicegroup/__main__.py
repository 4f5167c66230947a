from servicegroup.cli import main

raise SystemExit(main())
