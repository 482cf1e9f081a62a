"""The dashboard's static routes (/ui/) fit the security model: public files,
a strict CSP, nothing fetched from anywhere else. The pages themselves are
tested in a real Chromium (tests/ui/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from claimant.api import ui

STATIC = Path(ui.__file__).parent / "static"


def test_ui_redirects_to_the_index(client: TestClient) -> None:
    r = client.get("/ui", follow_redirects=False)
    assert r.status_code == 308
    assert r.headers["location"] == "ui/"  # relative: kept under a proxy's prefix
    assert client.get("/ui").url.path == "/ui/"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/ui/", "text/html"),
        ("/ui/app.js", "javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_are_public_under_a_strict_csp(
    tokens_app: FastAPI, path: str, kind: str
) -> None:
    # No token, in tokens mode: the files carry no data.
    with TestClient(tokens_app) as anonymous:
        r = anonymous.get(path)
    assert r.status_code == 200, r.text
    assert kind in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self';" in csp and "unsafe" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_data_still_needs_a_token(tokens_app: FastAPI) -> None:
    with TestClient(tokens_app) as anonymous:
        assert anonymous.get("/v1/providers").status_code == 401


def test_only_our_files_are_served(client: TestClient) -> None:
    assert client.get("/ui/../pyproject.toml").status_code == 404
    assert client.get("/ui/nope.js").status_code == 404
    r = client.post("/ui/app.js")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_pages_use_no_inline_code_and_no_external_asset() -> None:
    files = sorted(STATIC.iterdir())
    assert {f.name for f in files} >= {"index.html", "app.js", "app.css", "favicon.svg"}
    html = (STATIC / "index.html").read_text()
    # Inline scripts, styles and handlers would be refused by the CSP.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    for f in files:
        text = f.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f.name
        # Markup is never built from strings: API data can't become HTML.
        assert not re.search(r"\.(inner|outer)HTML|insertAdjacentHTML|document\.write", text)
        assert "eval(" not in text and "new Function" not in text, f.name
    for ref in re.findall(r"(?:src|href)=\"([^\"#]+)\"", html):
        if not ref.startswith("../"):
            assert (STATIC / ref).is_file(), ref


def test_swagger_ui_comes_from_the_package_under_a_csp(client: TestClient) -> None:
    r = client.get("/v1/docs")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "connect-src 'self'" in csp
    page = r.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script
    refs = re.findall(r"(?:src|href)=\"([^\"]+)\"", page)
    assert "/v1/docs/assets/swagger-ui-bundle.js" in refs
    for ref in refs:
        assert ref.startswith("/v1/docs/assets/"), ref
        assert client.get(ref).status_code == 200, ref
    # Swagger UI 5: the first to read OpenAPI 3.1, which is what /v1 describes itself in.
    assert client.get("/v1/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/v1/docs/assets/swagger-ui-bundle.js").text
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', bundle)
