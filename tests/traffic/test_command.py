"""`servicegroup proxy` flag errors are one line on stderr, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from servicegroup.cli import main

CASES = {
    "no node": (["proxy"], "--node is required"),
    "bad listen": (["proxy", "--node", "a", "--listen", "nowhere"], "HOST:PORT"),
    "bad health listen": (["proxy", "--node", "a", "--health-listen", "x:y"], "HOST:PORT"),
    "bad backlog": (["proxy", "--node", "a", "--max-backlog", "0"], "--max-backlog"),
}


@pytest.mark.parametrize(("argv", "message"), CASES.values(), ids=CASES.keys())
def test_flag_errors_are_one_line(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    text = str(exit_info.value.code)
    assert text.startswith("servicegroup proxy: error:")
    assert message in text
    assert "\n" not in text


def test_cache_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(SystemExit, match="is not a directory"):
        main(["proxy", "--node", "a", "--cache-dir", str(file)])
