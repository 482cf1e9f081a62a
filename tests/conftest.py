"""Backend fixtures shared by every test directory.

- ``sqlite_store``: a migrated SQLite store in the test's own temporary file.
- ``any_store``: a real store of each backend (the test runs once per backend;
  Cassandra only when CLAIMANT_TEST_CASSANDRA names a node, else skipped).
- ``cassandra_session_store``: the Cassandra store behind ``any_store``.
- ``cassandra_hosts`` / ``cassandra_url`` / ``cassandra_cluster_dir``: the node
  named by CLAIMANT_TEST_CASSANDRA, a throw-away keyspace on it (dropped after
  the test), and the running node's launcher directory
  (CLAIMANT_TEST_CLUSTER_DIR).

A test that needs Cassandra is marked ``cassandra`` (directly, or by its
``pytest.param``): it is skipped, with one reason, when
CLAIMANT_TEST_CASSANDRA is not set. The fixtures above skip the same way, so a
test that takes one need not be marked.

A directory's conftest names these for its tests (``store`` is ``any_store``
in tests/store and tests/e2e, ``sqlite_store`` in tests/api and
tests/scheduler).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claimant import logs
from claimant.store import Store, open_store

CASSANDRA_ENV = "CLAIMANT_TEST_CASSANDRA"
CLUSTER_DIR_ENV = "CLAIMANT_TEST_CLUSTER_DIR"
NO_CASSANDRA = f"Cassandra not tested: set {CASSANDRA_ENV}=host[,host...] to run it"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
]


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path).lstrip("/")


def cassandra_hosts_or_skip() -> str:
    hosts = os.environ.get(CASSANDRA_ENV, "").strip()
    if not hosts:
        pytest.skip(NO_CASSANDRA)
    return hosts


@pytest.hookimpl(tryfirst=True)  # before any fixture of the test is set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cassandra") is not None:
        cassandra_hosts_or_skip()


def skip_unless_built(built: bool, reason: str) -> pytest.MarkDecorator:
    """For a test that needs a venv scripts/test builds (Keystone, Nova,
    osc-placement): skipped where it is missing, except under CI (CI=true),
    where scripts/test has built it, so the test runs and a missing venv fails."""
    return pytest.mark.skipif(not built and os.environ.get("CI") != "true", reason=reason)


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    """A command run in-process (CliRunner) sets this process's logging up
    (``claimant.logs.configure``): take its handlers off and put the levels
    back, so that a later test's caplog sees what it expects and nothing logs
    into a closed CliRunner stream."""

    def loggers() -> list[logging.Logger]:
        found = logging.Logger.manager.loggerDict.values()
        return [logging.getLogger(), *(lg for lg in found if isinstance(lg, logging.Logger))]

    saved = {lg: (lg.level, lg.propagate) for lg in loggers()}
    configured = logs.log_config()["loggers"]
    yield
    for lg in loggers():
        if lg not in saved and lg.name not in configured:
            continue  # made by the code under test, as it would be in production
        # One the configuration made (``claimant``) goes back to NOTSET.
        level, propagate = saved.get(lg, (logging.NOTSET, True))
        lg.setLevel(level)
        lg.propagate = propagate
        for h in list(lg.handlers):
            if isinstance(h.formatter, logs.TextFormatter | logs.JsonFormatter):
                lg.removeHandler(h)


def drop_keyspace(url: str) -> None:
    st = open_store(url)
    try:
        st.drop()
    finally:
        st.close()


@pytest.fixture(scope="session")
def cassandra_hosts() -> str:
    return cassandra_hosts_or_skip()


@pytest.fixture
def cassandra_url(cassandra_hosts: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A store URL for a keyspace of its own, dropped after the test."""
    # Named after the test's module, so a keyspace left by a killed run says whose it was.
    module = request.node.path.stem.removeprefix("test_")[:20]
    url = f"cassandra://{cassandra_hosts}/ct_{module}_{secrets.token_hex(4)}?rf=1"
    yield url
    drop_keyspace(url)


@pytest.fixture(scope="session")
def cassandra_cluster_dir() -> Path:
    """The launcher directory of the node CLAIMANT_TEST_CASSANDRA names."""
    cassandra_hosts_or_skip()
    directory = os.environ.get(CLUSTER_DIR_ENV, "").strip()
    if not directory:
        pytest.skip(f"{CLUSTER_DIR_ENV} is not set (the launcher directory of that node)")
    return Path(directory)


@pytest.fixture(scope="session")
def cassandra_session_store(cassandra_hosts: str) -> Iterator[Store]:
    # One keyspace per session (per xdist worker): schema changes are slow in
    # Cassandra, truncates are not. Each test that takes it resets it.
    st = open_store(f"cassandra://{cassandra_hosts}/claimant_test_{secrets.token_hex(4)}?rf=1")
    try:
        st.migrate()
        yield st
    finally:
        # A failed migrate must not leave a half-made keyspace behind; its
        # error is the one that matters.
        with contextlib.suppress(Exception):
            st.drop()
        st.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    st = open_store(sqlite_url(tmp_path / "claimant.db"))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_store")
        return
    st = request.getfixturevalue("cassandra_session_store")
    st.reset()
    yield st


# How pytest-xdist (--dist loadgroup, scripts/test) shares the tests out:
# every test that takes one of these fixtures, which hold something the
# machine has once, runs on the same worker...
EXCLUSIVE = {
    "fake_env": "launcher",  # fake nodes on 127.0.2.1-3:9042 (tests/cluster)
    "browser": "chromium",  # one Chromium (tests/ui), a few hundred MB
}
# ...and a module whose tests share a module-scoped fixture (a Keystone, a
# served cloud) runs on one worker, so that fixture is set up once, not once
# per worker. Every other test goes to whichever worker is free.
SHARED_SCOPES = {"package", "module", "class"}


def xdist_group_of(item: pytest.Item) -> str | None:
    # The slow tests start clusters of real JVMs: one at a time.
    if item.get_closest_marker("slow") is not None:
        return "slow"
    names = getattr(item, "fixturenames", ())
    for fixture, group in EXCLUSIVE.items():
        if fixture in names:
            return group
    info = getattr(item, "_fixtureinfo", None)  # pytest's own record of the test's fixtures
    if info is not None:
        for defs in info.name2fixturedefs.values():
            if defs and defs[-1].scope in SHARED_SCOPES:
                return item.nodeid.split("::", 1)[0]
    return None


# pytest-xdist 3.8 marks a group by renaming the test (nodeid + "@group"),
# which pytest 9.2 ignores: --dist loadgroup then groups nothing
# (pytest-dev/pytest-xdist#1386). So each worker also writes the groups it
# collected to a file the controller's scheduler reads.
GROUPS_FILE = "claimant_xdist_groups"
GROUPS_PATH = pytest.StashKey[Path]()


def own_node_ids(items: list[pytest.Item]) -> None:
    """One node id per test, or collection stops naming the twins: xdist's
    scheduler keys its queue by node id and runs one of each id, silently."""
    for item in items:
        # pytest 9.2 builds a Function's id from its originalname (plus its
        # parametrize ids); schemathesis 4.32 passes the bare function name
        # there, keeping the operation in `name` only, so all its items of a
        # module shared one id. The id pytest would give that name is the fix.
        tail = item.nodeid.rsplit("::", 1)[-1]
        if tail != item.name and item.parent is not None and hasattr(item, "_id"):
            item._id = item.parent.id.child(item.name)
    seen: set[str] = set()
    twins = sorted({i.nodeid for i in items if i.nodeid in seen or seen.add(i.nodeid)})
    if twins:
        raise pytest.UsageError("more than one test has the node id: " + ", ".join(twins[:5]))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    own_node_ids(items)
    groups: dict[str, str] = {}
    for item in items:
        marked = sorted({str(m.args[0]) for m in item.iter_markers("xdist_group") if m.args})
        if marked:
            # One group per test (xdist would make a new group of two names).
            groups[item.nodeid] = "_".join(marked)
            continue
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            groups[item.nodeid] = group
    path = getattr(config, "workerinput", {}).get(GROUPS_FILE)
    if path:
        # Every worker collects the same tests: whichever writes last is right.
        tmp = Path(f"{path}.{os.getpid()}")
        tmp.write_text(json.dumps(groups))
        tmp.replace(path)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    config: pytest.Config = node.config
    if GROUPS_PATH not in config.stash:
        config.stash[GROUPS_PATH] = Path(tempfile.mkdtemp(prefix="claimant-xdist-")) / "groups"
    node.workerinput[GROUPS_FILE] = str(config.stash[GROUPS_PATH])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup" or GROUPS_PATH not in config.stash:
        return None
    from xdist.scheduler import LoadGroupScheduling

    path = config.stash[GROUPS_PATH]

    class FileGroupScheduling(LoadGroupScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            # Read once, at the first schedule: every worker has collected.
            if self.groups is None:
                self.groups = json.loads(path.read_text()) if path.exists() else {}
            return self.groups.get(nodeid) or str(super()._split_scope(nodeid))

    return FileGroupScheduling(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    if GROUPS_PATH in config.stash:
        shutil.rmtree(config.stash[GROUPS_PATH].parent, ignore_errors=True)
