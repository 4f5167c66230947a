"""Atomic replacement of the hosts file: readers see the old file or the new one, never a mix.

CoreDNS's `hosts` plugin and dnsmasq re-read the file while we write it, so SuperEdge's in-place
`WriteFile` (truncate, then write) could serve an empty or half file, and a full disk left it
truncated for good. Here the content goes to a temporary file in the same directory (same file
system, so the rename is atomic), is fsynced, then renamed over the target; the directory is
fsynced so the rename survives a crash. Any failure removes the temporary file and leaves the old
file untouched. The temporary name starts with a dot: dnsmasq's `--hostsdir` ignores dotfiles,
so it never loads a half-written one.

Mount the *directory* into CoreDNS, not the file: a rename gives the path a new inode, which a
single-file bind mount would never see.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o644


class HostsWriter:
    """Owns one hosts file and replaces it only when its content differs from the wanted one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def current(self) -> str | None:
        """The file's content now (None when missing or unreadable)."""
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def write(self, content: str) -> bool:
        """Make the file hold exactly `content`; returns whether it had to be replaced.

        The comparison is with the file on disk, not with what we wrote last, so a hand edit or a
        deleted file is repaired. Raises OSError on failure, with the old file intact.
        """
        if self.current() == content:
            return False
        data = content.encode("utf-8")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fchmod(tmp.fileno(), FILE_MODE)
                os.fsync(tmp.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        _fsync_dir(self.path.parent)
        return True


def _fsync_dir(directory: Path) -> None:
    """Persist a rename; some file systems refuse fsync on directories, which is harmless."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
