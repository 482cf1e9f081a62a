"""Issue 9: files that hold secrets or every project's data are private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from claimant.store import open_store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_store_files_are_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: files would be 0644
    try:
        db = tmp_path / "new" / "claimant.db"
        store = open_store("sqlite:///" + str(db).lstrip("/"))
        store.migrate()
        try:
            files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
            assert {f.name: _mode(f) for f in files if f.exists()} == {
                f.name: 0o600 for f in files if f.exists()
            }
            assert _mode(db) == 0o600
            assert _mode(db.parent) == 0o700
        finally:
            store.close()
    finally:
        os.umask(old)


def test_an_existing_store_file_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.touch(mode=0o640)
    db.chmod(0o640)  # an operator's choice (a group of readers) is kept
    store = open_store("sqlite:///" + str(db).lstrip("/"))
    store.migrate()
    store.close()
    assert _mode(db) == 0o640
