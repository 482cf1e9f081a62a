"""Issue 9 (and issue 8's leftovers) for ``claimant conductor serve`` and
``claimant agent run``: what they refuse to start with, and the options that
reach the running services. ``uvicorn.run`` is replaced by a recorder so a
command returns instead of serving; the store and apps are real."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner, Result

from claimant.cli.main import main
from claimant.store import open_store

from .test_service_auth import TOKENS


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def record(app: Any, **kw: Any) -> None:
        calls.append({"app": app, **kw})

    monkeypatch.setattr(uvicorn, "run", record)
    monkeypatch.delenv("CLAIMANT_LOOP_TOKEN", raising=False)
    return calls


def store_url(tmp_path: Path) -> str:
    return "sqlite:///" + str(tmp_path / "svc.db").lstrip("/")


def write(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def agent_config(tmp_path: Path, extra: str = "") -> str:
    return write(
        tmp_path / "agent.toml",
        '[provider]\nname = "host-a"\n[provider.inventories]\nVCPU = 4\nMEMORY_MB = 4096\n' + extra,
        0o644,
    )


def conductor(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["conductor", "serve", "--store", store_url(tmp_path), *args])


def agent(tmp_path: Path, *args: str, config: str | None = None) -> Result:
    cfg = config or agent_config(tmp_path)
    store = open_store(store_url(tmp_path))  # an agent does not create the schema
    store.migrate()
    store.close()
    return CliRunner().invoke(
        main, ["agent", "run", "--config", cfg, "--store", store_url(tmp_path), *args]
    )


def test_conductor_refuses_a_public_address_without_a_token(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    r = conductor(tmp_path, "--host", "0.0.0.0")
    assert r.exit_code == 2, r.output
    assert "refusing to bind 0.0.0.0" in r.output
    assert served == []
    tokens = write(tmp_path / "t.json", json.dumps({"tokens": TOKENS}))
    r = conductor(tmp_path, "--host", "0.0.0.0", "--token-file", tokens)
    assert r.exit_code == 0, r.output
    assert served[0]["host"] == "0.0.0.0"


def test_agent_refuses_a_public_address_without_a_token(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    r = agent(tmp_path, "--host", "::")
    assert r.exit_code == 2, r.output
    assert "refusing to bind ::" in r.output
    assert served == []
    token = write(tmp_path / "agent.token", "agent-a-tok\n")
    r = agent(tmp_path, "--host", "::", "--token-file", token)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_readable_token_files_are_refused(
    tmp_path: Path, served: list[dict[str, Any]], mode: int
) -> None:
    tokens = write(tmp_path / "t.json", json.dumps({"tokens": TOKENS}), mode)
    r = conductor(tmp_path, "--token-file", tokens)
    assert r.exit_code == 2, r.output
    assert "readable by group or others" in r.output
    token = write(tmp_path / "agent.token", "agent-a-tok\n", mode)
    r = agent(tmp_path, "--token-file", token)
    assert r.exit_code == 2, r.output
    assert "readable by group or others" in r.output
    assert served == []


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("bad role", ["--token-file", "{bad_role}"], "unknown role"),
        ("empty token file", ["--token-file", "{empty}"], "must map tokens"),
        ("token and token file", ["--token", "x", "--token-file", "{good}"], "not both"),
        ("zero ttl", ["--claim-ttl", "0"], "claim-ttl"),
        ("tiny body limit", ["--max-body-size", "10"], "max-body-size"),
    ],
)
def test_conductor_bad_config_exits_2(
    tmp_path: Path, served: list[dict[str, Any]], case: str, args: list[str], message: str
) -> None:
    files = {
        "bad_role": write(tmp_path / "bad.json", '{"tokens": {"t": {"role": "root"}}}'),
        "empty": write(tmp_path / "empty.json", "{}"),
        "good": write(tmp_path / "good.json", json.dumps({"tokens": TOKENS})),
    }
    r = conductor(tmp_path, *[a.format(**files) for a in args])
    assert r.exit_code == 2, f"{case}: {r.output}"
    assert message in r.output, case
    assert served == []


@pytest.mark.parametrize(
    ("case", "args", "extra", "message"),
    [
        ("unknown agent key", [], "[agent]\nheartbeat = 3\n", "unknown key"),
        ("bad interval", [], "[agent]\nheartbeat_interval = -1\n", "heartbeat_interval"),
        ("empty token file", ["--token-file", "{empty}"], "", "empty"),
        ("advertise with credentials", ["--advertise", "http://u:p@h:1"], "", "credentials"),
        ("advertise file url", ["--advertise", "file:///x"], "", "http"),
    ],
)
def test_agent_bad_config_exits_2(
    tmp_path: Path,
    served: list[dict[str, Any]],
    case: str,
    args: list[str],
    extra: str,
    message: str,
) -> None:
    files = {"empty": write(tmp_path / "empty.token", "\n")}
    cfg = agent_config(tmp_path, extra)
    r = agent(tmp_path, *[a.format(**files) for a in args], config=cfg)
    assert r.exit_code == 2, f"{case}: {r.output}"
    assert message in r.output, case
    assert served == []


def test_agent_state_file_flag(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    in_config = str(tmp_path / "from-config.json")
    cfg = agent_config(tmp_path, f'[agent]\nstate_file = "{in_config}"\n')
    r = agent(tmp_path, config=cfg)
    assert r.exit_code == 0, r.output
    assert served[-1]["app"].state.agent.config.state_file == in_config
    flag = str(tmp_path / "from-flag.json")
    r = agent(tmp_path, "--state-file", flag, config=cfg)
    assert r.exit_code == 0, r.output
    assert served[-1]["app"].state.agent.config.state_file == flag


def test_conductor_claim_ttl_and_body_limit(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    r = conductor(tmp_path)
    assert r.exit_code == 0, r.output
    assert served[-1]["app"].state.conductor.scheduler.config.claim_ttl == 300.0
    r = conductor(tmp_path, "--claim-ttl", "42.5", "--max-body-size", "2048")
    assert r.exit_code == 0, r.output
    app = served[-1]["app"]
    assert app.state.conductor.scheduler.config.claim_ttl == 42.5
    assert app.state.max_body == 2048


def test_cli_bounds_match_the_guard() -> None:
    from claimant.agent import guard
    from claimant.cli import agent_auth

    assert (agent_auth.DEFAULT_MAX_BODY, agent_auth.MIN_MAX_BODY) == (
        guard.DEFAULT_MAX_BODY,
        guard.MIN_MAX_BODY,
    )
