"""The native API's description: an OpenAPI document that tells the truth
(the statuses each operation can answer, the token it needs, which strings are
UUIDs), and Swagger UI served from files in the package (``swagger_ui/``)
instead of a CDN."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from claimant.api.auth import TOKEN_HEADER
from claimant.api.ui import Hardened, headers

DOCS = "/docs"
ASSETS = "/docs/assets"
SCHEME = "x-auth-token"
SWAGGER_UI = Path(str(files("claimant.api") / "swagger_ui"))
# Swagger UI sets style attributes as it renders: styles may be inline,
# scripts may not (its start-up is init.js).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}

_WHY = {
    "400": "a rule is broken (unknown name, malformed UUID or JSON, a bound exceeded)",
    "401": "no token, or an unknown one",
    "403": "the policy refuses the caller, or another project is named",
    "404": "no such thing (or another project's)",
    "409": "the state says no: a stale generation, in use, already exists, no valid host",
    "413": "the body is larger than the server's limit",
    "422": "the body or query does not match the schema",
    "500": "a bug; the server log has the details",
    "503": "the store is unavailable; retry later",
}


def _statuses(method: str, path: str, op: dict[str, Any]) -> list[str]:
    out = ["400", "401", "403", "500", "503"]  # 400: an unknown query parameter
    if "{" in path:
        out += ["400", "404"]
    if "requestBody" in op:
        # a body may name what does not exist (a parent, a class): 400 or 404
        out += ["400", "404", "413", "422"]
    if op.get("parameters"):
        out += ["400", "422"]
    if method != "get":
        out.append("409")
    return sorted(set(out))


def _params(op: dict[str, Any]) -> None:
    for p in op.get("parameters", ()):
        schema = p.setdefault("schema", {})
        named = schema.pop("x-name-or-uuid", False)
        if p.get("in") == "path" and p.get("name") == "uuid" and not named:
            schema["format"] = "uuid"
        # A query string cannot carry null: an optional parameter is left out.
        options = schema.get("anyOf")
        if p.get("in") == "query" and isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            del schema["anyOf"]
            if len(rest) == 1:
                schema.update(rest[0])
            else:
                schema["anyOf"] = rest


def _closed_maps(node: Any) -> None:
    """pydantic writes ``dict[Name, X]`` as patternProperties, which leaves
    keys that miss the pattern free; the server refuses them, so say so with
    propertyNames."""
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in node:
            ((pattern, value),) = patterns.items()
            del node["patternProperties"]
            names = node.setdefault("propertyNames", {})
            names["pattern"] = pattern
            node["additionalProperties"] = value
        for value in node.values():
            _closed_maps(value)
    elif isinstance(node, list):
        for value in node:
            _closed_maps(value)


def describe(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    _closed_maps(doc)
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = _ERROR
    components["securitySchemes"] = {
        SCHEME: {"type": "apiKey", "in": "header", "name": TOKEN_HEADER}
    }
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            op["security"] = [{SCHEME: []}]
            _params(op)
            responses = op.setdefault("responses", {})
            for status in _statuses(method, path, op):
                if status == "422" and status in responses:
                    continue  # FastAPI's own, with the field errors' shape
                responses.setdefault(
                    status,
                    {
                        "description": _WHY[status],
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                )
    return doc


def install(app: FastAPI, root: str) -> None:
    """``root`` is where ``app`` is mounted ("/v1")."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    assets = StaticFiles(directory=SWAGGER_UI)
    app.mount(ASSETS, Hardened(assets, csp=DOCS_CSP), name="docs_assets")
    page = _DOCS_PAGE.format(title=f"{app.title} - docs", assets=f"{root}{ASSETS}")

    @app.get(DOCS, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={k.decode(): v.decode() for k, v in headers(DOCS_CSP)})
