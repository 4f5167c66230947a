"""HostsWriter: atomic replacement, skip when unchanged, old file intact on every failure.

Failures are injected at each step of the write (create temp, write, fsync, rename) with
monkeypatch, because the tests may run as root, which ignores a read-only directory's mode; the
daemon test drives a real full disk (tmpfs) when it may mount one.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from servicegroup.dns import writer as writer_module
from servicegroup.dns.writer import HostsWriter

OLD = "# generated\n10.0.0.1 a.svc.cluster.local\n"
NEW = "# generated\n10.0.0.2 a.svc.cluster.local\n10.0.0.3 b.svc.cluster.local\n"


def test_creates_missing_file_with_mode_0644(tmp_path: Path) -> None:
    target = tmp_path / "hosts"
    assert HostsWriter(target).write(NEW) is True
    assert target.read_text() == NEW
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_unchanged_content_is_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "hosts"
    writer = HostsWriter(target)
    writer.write(NEW)
    inode = target.stat().st_ino
    assert writer.write(NEW) is False
    assert target.stat().st_ino == inode


def test_replacement_is_a_rename_not_an_in_place_rewrite(tmp_path: Path) -> None:
    target = tmp_path / "hosts"
    target.write_text(OLD)
    with target.open() as reader_of_old:  # a DNS server holding the old file open
        assert HostsWriter(target).write(NEW) is True
        assert reader_of_old.read() == OLD
    assert target.read_text() == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]


def test_hand_edited_file_is_repaired(tmp_path: Path) -> None:
    target = tmp_path / "hosts"
    writer = HostsWriter(target)
    writer.write(NEW)
    target.write_text(NEW + "6.6.6.6 evil.example\n")
    assert writer.write(NEW) is True
    assert target.read_text() == NEW


def _fail(err: int) -> object:
    def raiser(*args: object, **kwargs: object) -> None:
        raise OSError(err, os.strerror(err))

    return raiser


FAILURES = {
    "read-only-dir": ("tempfile.mkstemp", errno.EROFS),
    "permission-denied": ("tempfile.mkstemp", errno.EACCES),
    "disk-full-on-write": ("os.fdopen", errno.ENOSPC),
    "disk-full-on-fsync": ("os.fsync", errno.ENOSPC),
    "rename-fails": ("os.replace", errno.EIO),
}


@pytest.mark.parametrize(("target_name", "err"), FAILURES.values(), ids=FAILURES.keys())
def test_failure_leaves_old_file_intact_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target_name: str, err: int
) -> None:
    target = tmp_path / "hosts"
    target.write_text(OLD)
    module_name, function = target_name.split(".")
    monkeypatch.setattr(getattr(writer_module, module_name), function, _fail(err))
    with pytest.raises(OSError) as raised:
        HostsWriter(target).write(NEW)
    assert raised.value.errno == err
    assert target.read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]


def test_short_write_surfaces_and_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "hosts"
    target.write_text(OLD)
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fd: int, mode: str) -> None:
            self.file = real_fdopen(fd, mode)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            self.file.write(data[:5])
            raise OSError(errno.ENOSPC, "No space left on device")

        def fileno(self) -> int:
            return self.file.fileno()

    monkeypatch.setattr(writer_module.os, "fdopen", FullDisk)
    with pytest.raises(OSError):
        HostsWriter(target).write(NEW)
    assert target.read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HostsWriter(tmp_path / "absent" / "hosts").write(NEW)


def test_current_is_none_for_missing_file(tmp_path: Path) -> None:
    assert HostsWriter(tmp_path / "hosts").current() is None
