"""Issue 13: the API sizes its scheduling pool by the store's
``write_concurrency`` capability, not by the scheme of its URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimant.api import AuthConfig, create_app
from claimant.store import Store
from claimant.store.sqlite import SQLiteStore


class WideStore(SQLiteStore):
    """An SQLite store that says it serves three writers at once."""

    write_concurrency = 3


@pytest.mark.parametrize(("store_class", "expected"), [(SQLiteStore, 1), (WideStore, 3)])
def test_the_scheduling_pool_follows_the_stores_capability(
    tmp_path: Path, store_class: type[SQLiteStore], expected: int
) -> None:
    store = store_class(str(tmp_path / "c.db"))
    try:
        app = create_app(store, auth=AuthConfig.noauth2())
        executor = app.state.schedule_executor
        assert executor._max_workers == expected
        executor.shutdown()
    finally:
        store.close()


def test_every_backend_states_its_write_concurrency(any_store: Store) -> None:
    assert isinstance(any_store.write_concurrency, int)
    assert any_store.write_concurrency >= 1
