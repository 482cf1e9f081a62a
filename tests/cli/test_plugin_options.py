"""Issue 13: a filter's or weigher's options from claimant.toml
(``[scheduler.options.NAME]``) or ``--plugin-option NAME.OPTION=VALUE``,
checked at start-up: a bad one is a clear error with its stable code
(``invalid_plugin_options``, ``unknown_plugin``), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from claimant.cli.config import show
from claimant.cli.main import main
from claimant.model import Inventory, Provider, new_uuid
from claimant.store import open_store
from tests.api.serve_support import serve

GOOD = """\
[scheduler]
heartbeat_timeout = 0
filters = ["AffinityFilter", "MaxClaimsPerProviderFilter"]

[scheduler.options.MaxClaimsPerProviderFilter]
max_claims = 1

[scheduler.options.BuildFailureWeigher]
half_life = 120.5
"""


def _conductor(tmp_path: Path, toml: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "claimant.toml"
    path.write_text(toml)
    result = CliRunner().invoke(
        main,
        [
            "conductor", "serve", "--store", f"sqlite:///{tmp_path}/c.db", "--port", "9",
            "--config-file", str(path), *args,
        ],
    )  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


FILTER = '[scheduler]\nfilters = ["MaxClaimsPerProviderFilter"]\n'


@pytest.mark.parametrize(
    ("toml", "args", "code", "says"),
    [
        pytest.param(
            FILTER + "[scheduler.options.MaxClaimsPerProviderFilter]\nmax_claims = '8'\n",
            (),
            "invalid_plugin_options",
            "MaxClaimsPerProviderFilter: bad options: max_claims: Input should be a valid integer",
            id="a-string-for-an-integer",
        ),
        pytest.param(
            FILTER + "[scheduler.options.MaxClaimsPerProviderFilter]\nmax = 8\n",
            (),
            "invalid_plugin_options",
            "MaxClaimsPerProviderFilter: bad options: max: not an option",
            id="no-such-option",
        ),
        pytest.param(
            FILTER + "[scheduler.options.MaxClaimsPerProviderFilter]\nmax_claims = 0\n",
            (),
            "invalid_plugin_options",
            "max_claims: Input should be greater than or equal to 1",
            id="out-of-range",
        ),
        pytest.param(
            "[scheduler.options.NoSuchFilter]\nmax = 8\n",
            (),
            "unknown_plugin",
            "no filter or weigher is called 'NoSuchFilter'; known: AffinityFilter",
            id="unknown-plugin",
        ),
        pytest.param(
            "[scheduler.options.MaxClaimsPerProviderFilter]\nmax_claims = 2\n",
            (),
            "invalid_plugin_options",
            "options for MaxClaimsPerProviderFilter, which the scheduler does not run",
            id="plugin-not-run",
        ),
        pytest.param(
            "[scheduler.options]\nMaxClaimsPerProviderFilter = 8\n",
            (),
            "",
            "[scheduler.options.MaxClaimsPerProviderFilter] must be a table",
            id="not-a-table",
        ),
        pytest.param(
            GOOD,
            ("--plugin-option", "MaxClaimsPerProviderFilter.max_claims=-1"),
            "invalid_plugin_options",
            "max_claims: Input should be greater than or equal to 1 (got -1)",
            id="a-flag-replaces-the-file",
        ),
        pytest.param(
            GOOD,
            ("--plugin-option", "MaxClaimsPerProviderFilter=1"),
            "",
            "'MaxClaimsPerProviderFilter=1': use NAME.OPTION=VALUE",
            id="a-flag-without-an-option-name",
        ),
    ],
)
def test_bad_plugin_options_stop_the_start(
    tmp_path: Path, toml: str, args: tuple[str, ...], code: str, says: str
) -> None:
    exit_code, output = _conductor(tmp_path, toml, *args)
    assert exit_code == 2, output
    if code:
        assert f"{code}: " in output
    assert says in " ".join(output.split())
    assert "Traceback" not in output


def test_config_show_lists_the_files_plugin_options(tmp_path: Path) -> None:
    path = tmp_path / "claimant.toml"
    path.write_text(GOOD)
    for command in ("serve", "conductor"):
        result = CliRunner().invoke(
            show, ["--for", command, "--config-file", str(path), "--json"], env={}
        )
        assert result.exit_code == 0, result.output
        rows = {row["setting"]: row for row in json.loads(result.output)}
        assert list(rows["plugin-option"]["value"]) == [
            "MaxClaimsPerProviderFilter.max_claims=1",
            "BuildFailureWeigher.half_life=120.5",
        ]
        assert rows["plugin-option"]["source"].startswith("file")


def test_serve_schedules_with_the_files_plugin_options(tmp_path: Path) -> None:
    # max_claims = 1 from the file: one host, one claim on it, and the next
    # request finds no valid host, for that reason.
    path = tmp_path / "claimant.toml"
    path.write_text(GOOD)
    admin = {"x-auth-token": "admin"}
    with serve(tmp_path, "--config-file", str(path)) as s:
        store = open_store(s.store_url)
        try:
            store.create_provider(
                Provider(
                    uuid=new_uuid(),
                    name="cn1",
                    inventories={"VCPU": Inventory("VCPU", 64)},
                )
            )
        finally:
            store.close()
        body = {"groups": [{"resources": {"VCPU": 1}}]}
        first = httpx.post(s.url + "/v1/requests", json=body, headers=admin)
        second = httpx.post(s.url + "/v1/requests", json=body, headers=admin)
    assert first.status_code == 201, first.text
    assert second.status_code == 409, second.text
    assert "unconfirmed claim(s) on this provider, limit 1" in second.text
