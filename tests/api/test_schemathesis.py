"""Issue 9: schemathesis with every check (its ``--checks all``) against
/v1/openapi.json, on the real app and a real SQLite store, as an admin.

One expectation is configured to the documented contract (docs/api.md): a
request the schema allows may still be 400 when it names what the store does
not know (a trait, a class, a type), as in Placement."""

from __future__ import annotations

import atexit
import shutil
import tempfile

import pytest

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402

from claimant.api import AuthConfig, create_app  # noqa: E402
from claimant.store import open_store  # noqa: E402

ADMIN = {"x-auth-token": "admin"}

load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": 25, "deterministic": True},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "409"]
            }
        },
    }
)

# schemathesis reads the schema when the module is collected.
_dir = tempfile.mkdtemp(prefix="claimant-schemathesis-")
atexit.register(shutil.rmtree, _dir, ignore_errors=True)
_store = open_store("sqlite:///" + _dir.lstrip("/") + "/claimant.db")
_store.migrate()
schema = schemathesis.openapi.from_asgi(
    "/v1/openapi.json", create_app(_store, auth=AuthConfig.noauth2()), config=CONFIG
)


@schema.parametrize()
def test_native_api_conforms(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=ADMIN, checks=ALL_CHECKS)
