"""``claimant store migrate|drop``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from claimant.cli.main import main
from claimant.model import Provider, new_uuid
from claimant.store import open_store


def test_migrate_then_drop(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "s.db").lstrip("/")
    result = CliRunner().invoke(main, ["store", "migrate", "--store", url])
    assert result.exit_code == 0, result.output
    assert "schema version" in result.output
    st = open_store(url)
    try:
        st.create_provider(Provider(uuid=new_uuid(), name="cn1"))
    finally:
        st.close()
    refused = CliRunner().invoke(main, ["store", "drop", "--store", url])
    assert refused.exit_code == 2 and "--yes" in refused.output
    dropped = CliRunner().invoke(main, ["store", "drop", "--yes", "--store", url])
    assert dropped.exit_code == 0, dropped.output
    again = CliRunner().invoke(main, ["store", "migrate", "--store", url])
    assert again.exit_code == 0, again.output
    st = open_store(url)
    try:
        assert st.list_providers() == []
    finally:
        st.close()


def test_bad_store_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["store", "migrate", "--store", "nosuch://x"])
    assert result.exit_code == 1
    # A store is a plugin named by the URL's scheme (issue 13): the known ones are listed.
    assert "unknown_plugin" in result.output and "Traceback" not in result.output
    assert "cassandra:// or sqlite://" in result.output
