"""The web dashboard at /ui/: static files shipped in the package (no build
step, no CDN). The files are public, as /v1/docs is; every datum the pages
show comes from the API with the caller's token (docs/security.md)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PATH = "/ui"
STATIC = Path(str(files(__package__) / "static"))

# Only our own files may run or style the pages, and they may talk to this
# origin only: a provider name carrying markup can never become a script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def headers(csp: str = CSP) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        # The files change only with the package; revalidating is cheap (ETag).
        (b"cache-control", b"no-cache"),
    )


class Hardened:
    """Adds ``headers(csp)`` to every response of ``app``."""

    def __init__(self, app: ASGIApp, csp: str = CSP) -> None:
        self.app = app
        self.headers = list(headers(csp))
        self.names = frozenset(name for name, _ in self.headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                old = message.get("headers", [])
                kept = [(k, v) for k, v in old if k.lower() not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_hardened)


def install(app: FastAPI) -> None:
    """Serve the dashboard from ``app`` at ``/ui/``; call before anything is
    mounted at "/"."""

    @app.get(PATH, include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        # Relative, so a proxy that serves claimant under a prefix keeps it.
        return RedirectResponse(PATH.lstrip("/") + "/", status_code=308)

    app.mount(PATH, Hardened(StaticFiles(directory=STATIC, html=True)), name="ui")
