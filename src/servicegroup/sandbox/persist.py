"""--data-dir persistence: every object as JSON in one SQLite table, plus the resourceVersion counter.

Writes are recorded per commit and flushed in batches (one transaction), so 10k creates cost one
fsync-free transaction rather than 10k; `flush()` runs on a timer and at shutdown.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from servicegroup.sandbox.storage import StorageEvent

Row = tuple[str, str, str, str]  # group, plural, namespace, name
DB_NAME = "sandbox.db"


class Persistence:
    """The SQLite file behind `Sandbox(data_dir=...)`."""

    def __init__(self, data_dir: str | Path) -> None:
        path = Path(data_dir)
        path.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path / DB_NAME)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (grp TEXT, plural TEXT, ns TEXT, name TEXT, body BLOB,"
            " PRIMARY KEY (grp, plural, ns, name))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._db.commit()
        self._dirty: dict[Row, bytes | None] = {}
        self._rv = 0

    def load(self) -> tuple[int, list[tuple[str, str, dict[str, Any]]]]:
        """(resourceVersion counter, [(group, plural, object)]) as last flushed."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'resourceVersion'").fetchone()
        rv = int(row[0]) if row else 0
        objs = [
            (grp, plural, orjson.loads(body))
            for grp, plural, body in self._db.execute("SELECT grp, plural, body FROM objects")
        ]
        self._rv = rv
        return rv, objs

    def record(self, event: StorageEvent) -> None:
        """Remember one committed change for the next flush."""
        meta = event.obj.get("metadata") or {}
        key = (event.rt.group, event.rt.plural, meta.get("namespace") or "", meta.get("name") or "")
        self._dirty[key] = None if event.type == "DELETED" else orjson.dumps(event.obj)
        self._rv = event.rv

    def flush(self) -> None:
        """Write every recorded change in one transaction."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        with self._db:
            self._db.executemany(
                "DELETE FROM objects WHERE grp=? AND plural=? AND ns=? AND name=?",
                [k for k, v in dirty.items() if v is None],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
                [(*k, v) for k, v in dirty.items() if v is not None],
            )
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('resourceVersion', ?)", (str(self._rv),))

    def close(self) -> None:
        """Flush and close the database."""
        self.flush()
        self._db.close()
