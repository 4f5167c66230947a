"""Per-node hosts-file daemon: `<ssg>-<i>.<svc>.<ns>.svc.<domain>` resolves to the local unit's pod."""
