"""The release artefacts work away from the repository (issue 11): ``python -m
build`` makes an sdist and, from it, a wheel; the wheel installs into a fresh
virtualenv and ``claimant serve`` answers /healthz, the dashboard and the API
docs from the installed files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx

from tests import children
from tests.api.serve_support import free_port

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FILES = (
    "claimant/py.typed",
    "claimant/api/ui/static/index.html",
    "claimant/api/ui/static/app.js",
    "claimant/api/ui/static/app.css",
    "claimant/api/ui/static/favicon.svg",
    "claimant/api/swagger_ui/swagger-ui-bundle.js",
    "claimant/api/swagger_ui/swagger-ui.css",
    "claimant/api/swagger_ui/init.js",
    "claimant/api/swagger_ui/LICENSE",
)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _clean_env() -> dict[str, str]:
    """No trace of the repository's virtualenv or source tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("PYTHONHOME", None)
    return env


def test_the_wheel_installs_and_serves_from_a_clean_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("claimant-*.whl")
    assert len(list(dist.glob("claimant-*.tar.gz"))) == 1
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in PACKAGE_FILES if f not in names]
    assert missing == [], missing
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    # Every plugin, claimant's own included, is an entry point (issue 13): the
    # clean venv's `claimant serve` below finds its store and scheduler plugins
    # through them.
    points = zipfile.ZipFile(wheel).read("claimant-0.1.0.dist-info/entry_points.txt").decode()
    for group in ("claimant.filters", "claimant.weighers", "claimant.drivers", "claimant.stores"):
        assert f"[{group}]" in points, group
    assert "sqlite = claimant.store.urls:open_sqlite" in points

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run(base, "-m", "venv", venv, cwd=tmp_path)
    env = _clean_env()
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path, env=env)
    where = _run(
        venv / "bin" / "python", "-c", "import claimant; print(claimant.__file__)", cwd=tmp_path
    )
    assert where.startswith(str(venv)), where
    version = _run(venv / "bin" / "claimant", "--version", cwd=tmp_path, env=env)
    assert version.strip() == "claimant, version 0.1.0"

    port = free_port()
    store = "sqlite:///" + str(tmp_path / "wheel.db").lstrip("/")
    log = (tmp_path / "serve.log").open("w")
    proc = children.popen(
        [venv / "bin" / "claimant", "serve", "--store", store, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                health = httpx.get(url + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        with httpx.Client(base_url=url, headers={"x-auth-token": "admin"}) as http:
            ui = http.get("/ui/")
            assert ui.status_code == 200 and 'src="app.js"' in ui.text
            for path in ("/ui/app.js", "/ui/app.css", "/v1/docs", "/v1/openapi.json"):
                assert http.get(path).status_code == 200, path
            assert http.get("/v1/docs/assets/swagger-ui-bundle.js").status_code == 200
            made = http.post(
                "/v1/providers", json={"name": "w1", "inventories": {"VCPU": {"total": 2}}}
            )
            assert made.status_code == 201, made.text
            placed = http.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}]})
            assert placed.status_code == 201, placed.text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    # uvicorn ends a graceful SIGTERM shutdown by re-raising the signal.
    assert proc.returncode in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()
