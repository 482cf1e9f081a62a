"""deploy/ stays true to the code: the systemd units pass systemd's own
checks and are hardened (``systemd-analyze security``), and every command
line in deploy/ names options the CLI has; the sample configs load."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.agent.config import AgentConfig, provider_spec
from claimant.cli import settings
from claimant.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
# systemd-analyze security's scale: 0 (locked down) to 10 (exposed); "OK" is below 2.
MAX_EXPOSURE = 2.0


def _exec_start(unit: Path) -> list[str]:
    text = unit.read_text().replace("\\\n", " ")
    (line,) = [x for x in text.splitlines() if x.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def _container_cmd() -> list[str]:
    text = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ")
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    return list(entry) + list(cmd)


def _check_options(argv: list[str]) -> None:
    """``argv``: claimant SUBCOMMAND... --option value ...; every --option
    must be one the subcommand's --help lists."""
    assert Path(argv[0]).name == "claimant", argv
    words = []
    for a in argv[1:]:
        if a.startswith("-"):
            break
        words.append(a)
    result = CliRunner().invoke(main, [*words, "--help"])
    assert result.exit_code == 0, result.output
    given = {a.split("=")[0] for a in argv if a.startswith("--")}
    listed = set(re.findall(r"(--[a-z][a-z0-9-]*)", result.output))
    assert given <= listed, (words, given - listed)


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_command_lines_use_real_options(unit: Path) -> None:
    _check_options(_exec_start(unit))


def test_the_container_command_uses_real_options() -> None:
    _check_options(_container_cmd())


def test_units_pass_systemd_verify_and_are_hardened(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    claimant = shutil.which("claimant") or "/bin/true"
    for unit in UNITS:
        # verify insists the program exists: point it at this one.
        text = unit.read_text().replace("/opt/claimant/bin/claimant", claimant)
        (tmp_path / unit.name).write_text(text)
    copies = [str(tmp_path / u.name) for u in UNITS]
    verify = subprocess.run(
        [analyze, "verify", "--man=no", *copies], capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    for copy in copies:
        security = subprocess.run(
            [analyze, "security", "--offline=yes", copy],
            capture_output=True,
            text=True,
            timeout=120,
        )
        found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
        assert found, security.stdout + security.stderr
        assert float(found.group(1)) <= MAX_EXPOSURE, security.stdout


def test_sample_configs_load() -> None:
    serve = settings.load(DEPLOY / "claimant.toml")
    assert serve.serve["store_url"].startswith("sqlite:////var/lib/claimant/")
    agent = AgentConfig.load(DEPLOY / "agent.toml")
    assert set(provider_spec(agent.provider).inventories) == {"VCPU", "MEMORY_MB", "DISK_GB"}
    for env in ("conductor.env", "agent.env"):
        names = {
            line.split("=", 1)[0]
            for line in (DEPLOY / env).read_text().splitlines()
            if line and not line.startswith("#")
        }
        used = set()
        for unit in UNITS:
            if f"/etc/claimant/{env}" in unit.read_text():
                used |= set(re.findall(r"\$\{(\w+)\}", unit.read_text()))
        assert used and used <= names, (env, used - names)
