"""The OpenAPI document, the query parameters it documents per route, and /docs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

DOCS_ASSETS = "/docs/assets"
#: The page loads nothing but this API's own files (its one inline script starts swagger-ui).
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def install(app: FastAPI) -> None:
    """Serve :func:`schema` as the app's OpenAPI document, and swagger-ui at /docs from the
    files of the swagger-ui-bundle package: no CDN (the page works offline, and no third
    party's script runs beside a token)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.openapi = lambda: schema(app)  # type: ignore[method-assign]
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            # swagger-ui's validator badge would send the schema's URL to validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        page.headers["X-Content-Type-Options"] = "nosniff"
        return page


def schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, except that an HTML route's error responses are documented as
    JSON, which they are (FastAPI documents them as text/html)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for operations in document["paths"].values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if code != "200" and "text/html" in content:
                        content["application/json"] = content.pop("text/html")
        app.openapi_schema = document
    return app.openapi_schema


def documented_methods(request: Request) -> list[str]:
    """The methods the OpenAPI schema documents for the matched route's path."""
    path = getattr(request.scope.get("route"), "path_format", None)
    return sorted(method.upper() for method in request.app.openapi()["paths"].get(path, {}))


def documented_query_parameters(request: Request) -> frozenset[str] | None:
    """The query parameters the matched route documents in the OpenAPI schema (the same
    list clients and fuzzers read: a test holds the two equal), or None for a route
    outside the schema. Read from the route's dependencies, not from the generated
    schema: generating it on a new instance's first request cost 0.2 s."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return None
    return query_parameters_of(route)


def query_parameters_of(route: APIRoute) -> frozenset[str]:
    """The names of the query parameters of a route and of every dependency it has."""
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names |= {field.alias for field in dependant.query_params}
        pending += dependant.dependencies
    return frozenset(names)
