"""`--cache-dir`: the served view on disk, so a proxy restarted while the API server is unreachable
still answers kube-proxy and CoreDNS with the last known filtered view.

Two files, each replaced atomically (write a temporary file, fsync, rename, fsync the directory):

    view.json   every served object (with our resourceVersions), written at most once per
                `interval` and only when something changed (debounced, off the event loop)
    rv          the resourceVersion reservation (`ResourceVersions` asks before crossing it), so
                a restarted proxy never hands out a number it may have served before
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, Final

import orjson

from servicegroup.kube.store import object_key
from servicegroup.traffic.sync import ServedView

log = logging.getLogger(__name__)

FORMAT: Final = 1
VIEW_FILE: Final = "view.json"
RV_FILE: Final = "rv"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old or the new file, never a partial one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class CacheDir:
    """The proxy's files in one directory (created if missing)."""

    def __init__(self, path: Path, node: str) -> None:
        self.path = path
        self.node = node
        self._saved_rv: int | None = None  # the counter when the file last matched the view
        path.mkdir(parents=True, exist_ok=True)

    def reserved(self) -> int:
        """The highest resourceVersion a previous run may have served (0 when none)."""
        try:
            return int((self.path / RV_FILE).read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError as err:
            raise ValueError(f"{self.path / RV_FILE}: not a resourceVersion: {err}") from err

    def reserve(self, upto: int) -> None:
        """Persist a reservation (synchronous: it must be on disk before the RVs are used)."""
        write_atomically(self.path / RV_FILE, f"{upto}\n".encode())

    def load(self, view: ServedView) -> bool:
        """Serve the persisted view, if there is one for this node; True when loaded."""
        try:
            data = orjson.loads((self.path / VIEW_FILE).read_bytes())
        except FileNotFoundError:
            return False
        except orjson.JSONDecodeError as err:
            log.warning("cache %s is unreadable, ignoring it: %s", self.path / VIEW_FILE, err)
            return False
        if data.get("format") != FORMAT or data.get("node") != self.node:
            log.warning(
                "cache %s is for node %r, not %r; ignoring it", self.path, data.get("node"), self.node
            )
            return False
        for plural, cache in view.caches.items():
            cache.load(data["resources"].get(plural, []), object_key)
        self._saved_rv = view.rvs.current
        log.info("serving the persisted view of %s (resourceVersion %s)", self.path, data.get("rv"))
        return True

    async def save(self, view: ServedView) -> None:
        """Write the served view: encoded on the loop (a consistent snapshot), written in a thread."""
        snapshot: dict[str, Any] = {
            "format": FORMAT,
            "node": self.node,
            "rv": view.rvs.current,
            "resources": {plural: cache.objects() for plural, cache in view.caches.items()},
        }
        data = orjson.dumps(snapshot)
        await asyncio.to_thread(write_atomically, self.path / VIEW_FILE, data)
        self._saved_rv = snapshot["rv"]

    async def keep_saved(self, view: ServedView, interval: float = 1.0) -> None:
        """Save whenever the view changed since the last save or load, at most once per `interval`
        (a task, started once the view is worth keeping; the owner saves once more after
        cancelling it, so a clean stop loses nothing)."""
        while True:
            await asyncio.sleep(interval)
            if view.rvs.current != self._saved_rv:
                await self.save_logged(view)

    async def save_logged(self, view: ServedView) -> None:
        """`save`, logging instead of raising: a full disk must not stop the proxy serving."""
        try:
            await self.save(view)
        except OSError as err:
            log.warning("could not save the view to %s: %s", self.path, err)
