"""A real Keystone (PyPI's ``keystone``, SQLite, fernet tokens) on loopback.

The virtualenv is built by ``scripts/test`` from ``requirements.txt`` under
the platform cache (``keystone-venv``; ``CLAIMANT_KEYSTONE_VENV`` moves it).
``Keystone.start`` writes a config, runs ``keystone-manage`` (db_sync, key
repositories, bootstrap) and serves it with gunicorn; the helpers create
projects, users and role assignments through Keystone's own API.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from platformdirs import user_cache_dir

from tests import children

HERE = Path(__file__).parent
VENV = Path(
    os.environ.get("CLAIMANT_KEYSTONE_VENV") or Path(user_cache_dir("claimant")) / "keystone-venv"
)
ADMIN_PASSWORD = "keystone-admin-secret"


def available() -> bool:
    return (VENV / "bin" / "keystone-manage").is_file() and (VENV / "bin" / "gunicorn").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Keystone:
    def __init__(self, workdir: Path, token_expiration: int = 3600) -> None:
        self.dir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v3"
        self.conf = workdir / "keystone.conf"
        self.token_expiration = token_expiration
        self.proc: subprocess.Popen[bytes] | None = None
        self._record: Path | None = None
        self._admin: tuple[float, str] | None = None

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        # What a killed run left behind (tests/children.py).
        children.sweep("keystone")
        d = self.dir
        self.conf.write_text(
            "[database]\n"
            f"connection = sqlite:///{d / 'keystone.db'}\n"
            "[token]\nprovider = fernet\n"
            f"expiration = {self.token_expiration}\n"
            f"[fernet_tokens]\nkey_repository = {d / 'fernet-keys'}\n"
            f"[fernet_receipts]\nkey_repository = {d / 'fernet-receipts'}\n"
            f"[credential]\nkey_repository = {d / 'credential-keys'}\n"
        )
        user = os.environ.get("USER") or str(os.getuid())
        group = str(os.getgid())
        manage = [str(VENV / "bin" / "keystone-manage"), "--config-file", str(self.conf)]
        steps = [
            ["db_sync"],
            ["fernet_setup", "--keystone-user", user, "--keystone-group", group],
            ["credential_setup", "--keystone-user", user, "--keystone-group", group],
            [
                "bootstrap",
                "--bootstrap-password",
                ADMIN_PASSWORD,
                "--bootstrap-public-url",
                self.url,
                # keystonemiddleware looks for the internal one by default
                "--bootstrap-internal-url",
                self.url,
                "--bootstrap-region-id",
                "RegionOne",
            ],
        ]
        log = (d / "keystone-manage.log").open("w")
        for step in steps:
            subprocess.run([*manage, *step], stdout=log, stderr=subprocess.STDOUT, check=True)
        env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(self.conf)}
        control = d / "gunicorn.ctl"  # in this fixture's directory: no other server's
        argv = [
            str(VENV / "bin" / "gunicorn"),
            "--config",
            str(HERE / "gunicorn_conf.py"),
            "--chdir",
            str(HERE),
            "--control-socket",
            str(control),
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{self.port}",
            "wsgi:application",
        ]
        # A session of its own, so stop() and pause() reach the worker too.
        self.proc = children.popen(
            argv,
            env=env,
            stdout=(d / "keystone.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._record = children.record("keystone", self.proc.pid, str(control))
        try:
            self._wait_until_up(self.proc)
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    "keystone exited: " + (self.dir / "keystone.log").read_text()[-2000:]
                )
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("keystone did not start")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)  # a paused one could not stop
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._record is not None:
            children.forget(self._record)
            self._record = None

    def pause(self) -> None:
        """Stop answering (SIGSTOP), as a Keystone that hangs."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    # -- identity API ------------------------------------------------------
    def token(self, user: str, password: str, project: str | None = None) -> str:
        scope: dict[str, Any] = (
            {"project": {"name": project, "domain": {"id": "default"}}}
            if project
            else {"system": {"all": True}}
        )
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": user, "domain": {"id": "default"}, "password": password}
                    },
                },
                "scope": scope,
            }
        }
        r = httpx.post(f"{self.url}/auth/tokens", json=body, timeout=30)
        r.raise_for_status()
        return r.headers["x-subject-token"]

    def admin_token(self) -> str:
        """The bootstrap admin's token, fetched again once half its life is gone."""
        if self._admin is None or time.monotonic() - self._admin[0] > self.token_expiration / 2:
            self._admin = (time.monotonic(), self.token("admin", ADMIN_PASSWORD, "admin"))
        return self._admin[1]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        r = httpx.request(
            method,
            self.url + path,
            json=body,
            headers={"x-auth-token": self.admin_token()},
            timeout=30,
        )
        r.raise_for_status()
        return r.json() if r.content else None

    def project(self, name: str) -> str:
        found = self._call("GET", f"/projects?name={name}")["projects"]
        if found:
            return str(found[0]["id"])
        made = self._call("POST", "/projects", {"project": {"name": name, "domain_id": "default"}})
        return str(made["project"]["id"])

    def role(self, name: str) -> str:
        found = self._call("GET", f"/roles?name={name}")["roles"]
        if found:
            return str(found[0]["id"])
        return str(self._call("POST", "/roles", {"role": {"name": name}})["role"]["id"])

    def user(self, name: str, password: str, project: str, roles: list[str]) -> str:
        made = self._call(
            "POST",
            "/users",
            {"user": {"name": name, "password": password, "domain_id": "default"}},
        )
        uid = str(made["user"]["id"])
        pid = self.project(project)
        for role in roles:
            self._call("PUT", f"/projects/{pid}/users/{uid}/roles/{self.role(role)}")
        return uid

    def revoke(self, token: str) -> None:
        r = httpx.request(
            "DELETE",
            f"{self.url}/auth/tokens",
            headers={"x-auth-token": self.admin_token(), "x-subject-token": token},
            timeout=30,
        )
        r.raise_for_status()

    def authtoken_section(self, user: str, password: str, project: str, **extra: Any) -> str:
        """A ``[keystone_authtoken]`` section as a placement.conf has it."""
        lines = [
            "[keystone_authtoken]",
            f"www_authenticate_uri = {self.url}",
            f"auth_url = {self.url}",
            "auth_type = password",
            f"username = {user}",
            f"password = {password}",
            "user_domain_name = Default",
            f"project_name = {project}",
            "project_domain_name = Default",
            *(f"{k} = {v}" for k, v in extra.items()),
        ]
        return "\n".join(lines) + "\n"
