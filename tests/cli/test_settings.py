"""``claimant serve --config-file``: a placement.conf or a claimant.toml
read with Placement's meanings; unknown options reported, bad ones refused
(issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimant.cli import settings
from claimant.model.errors import InvalidInput

PLACEMENT_CONF = """\
[DEFAULT]
debug = True
log_dir = /var/log/placement

[api]
auth_strategy = keystone

[placement]
max_allocation_candidates = 1000
allocation_candidates_generation_strategy = depth-first
randomize_allocation_candidates = true

[placement_database]
connection = mysql+pymysql://placement:secret@db/placement

[workarounds]
optimize_for_wide_provider_trees = True

[keystone_authtoken]
www_authenticate_uri = http://keystone/identity
password = secret

[oslo_policy]
policy_file = policy.yaml

[cors]
allowed_origin = https://dash.example.org, https://other.example.org
"""


def test_placement_conf_is_read_with_placements_meanings(tmp_path: Path) -> None:
    conf = tmp_path / "placement.conf"
    conf.write_text(PLACEMENT_CONF)
    (tmp_path / "policy.yaml").write_text("{}\n")
    s = settings.load(conf)
    assert s.serve == {
        "log_level": "debug",
        "auth_mode": "keystone",
        "policy_file": str(tmp_path / "policy.yaml"),
        "max_allocation_candidates": 1000,
        "candidate_strategy": "depth-first",
        "randomize_candidates": True,
        "cors_origin": ("https://dash.example.org", "https://other.example.org"),
    }
    assert s.no_effect == ["[workarounds] optimize_for_wide_provider_trees"]
    # Reported, never fatal; and never their values (a password, a DB URL).
    assert "[placement_database] connection" in s.ignored
    assert "[DEFAULT] log_dir" in s.ignored
    assert not any("secret" in i for i in s.ignored)


def test_a_missing_policy_file_means_the_defaults(tmp_path: Path) -> None:
    conf = tmp_path / "placement.conf"
    conf.write_text("[oslo_policy]\npolicy_file = policy.yaml\n")
    assert "policy_file" not in settings.load(conf).serve


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[placement]\nmax_allocation_candidates = lots\n", "integer"),
        ("[placement]\nmax_allocation_candidates = 0\n", "-1"),
        ("[placement]\nallocation_candidates_generation_strategy = random\n", "depth-first"),
        ("[placement]\nrandomize_allocation_candidates = perhaps\n", "true or false"),
        ("[api]\nauth_strategy = token\n", "keystone or noauth2"),
        ("[api\nauth_strategy = keystone\n", "placement.conf"),
    ],
)
def test_bad_values_are_refused_clearly(tmp_path: Path, text: str, says: str) -> None:
    conf = tmp_path / "placement.conf"
    conf.write_text(text)
    with pytest.raises(InvalidInput) as err:
        settings.load(conf)
    assert says in err.value.message


def test_claimant_toml(tmp_path: Path) -> None:
    conf = tmp_path / "claimant.toml"
    conf.write_text(
        '[serve]\nstore = "sqlite:///x.db"\nport = 9000\nrequest-timeout = 2.5\n'
        "[placement]\nmax_allocation_candidates = 50\n"
    )
    s = settings.load(conf)
    assert s.serve == {
        "store_url": "sqlite:///x.db",
        "port": 9000,
        "request_timeout": 2.5,
        "max_allocation_candidates": 50,
    }
    conf.write_text("[serve]\nportt = 1\n")
    with pytest.raises(InvalidInput, match="portt"):
        settings.load(conf)
