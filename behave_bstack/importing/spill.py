"""A key -> JSON value store on disk, for what an import must look up later but need
not hold in memory (a Cucumber Messages stream's pickles and test cases).

Runs in the `behave-bstack import` process.  SQLite (standard library) in a file in the
journal's directory, removed when the import ends; its page cache is bounded, so 100,000
pickles cost disk, not memory.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

NAME = "import-index.sqlite"


class Spill:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / NAME
        for leftover in (self.path, Path(str(self.path) + "-journal")):
            if leftover.exists():
                leftover.unlink()  # an import killed earlier
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        os.chmod(self.path, 0o600)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID")
        self._db.execute("BEGIN")
        self._pending = 0

    def put(self, key: str, value) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value)))
        self._pending += 1
        if self._pending >= 5000:  # commit in batches: one transaction per row is slow
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._pending = 0

    def get(self, key: str):
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            try:
                self.path.unlink()
            except OSError:
                pass
