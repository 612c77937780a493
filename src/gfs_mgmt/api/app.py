"""The FastAPI application: auth, JSON errors, and the routers.

Every reply that is not 2xx is `{code, message, details}` (gfs.api.models.ErrorBody)
with a 4xx status for anything a caller can cause; a 500 is a bug.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gfs import __version__
from gfs.api import models as m
from gfs.errors import GfsError

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False)


def error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body = m.ErrorBody(code=code, message=message, details=details or {})
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"))


def _validation_message(exc: RequestValidationError) -> str:
    errs = exc.errors()
    if not errs:
        return "invalid request"
    first = errs[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))


#: What a volume credential's token may call (route templates under /v1), on its own
#: volumes only: what a mount needs (the layout, the volume's options, and asking gfsd
#: to settle a primary that seems gone).
CREDENTIAL_ROUTES = frozenset(
    {
        ("GET", "/volumes/{name}"),
        ("GET", "/volumes/{name}/options"),
        ("POST", "/volumes/{name}/replica-sets/{index}/reconcile"),
    }
)


def create_app(
    token: str,
    routers: list[Any],
    scoped: Callable[[str], frozenset[str] | None] | None = None,
) -> FastAPI:
    """The app; `token` is the admin bearer token, required on every endpoint but health.
    `scoped(token)`: the volumes a volume credential's token may read (None: no such
    live credential); such a token may call CREDENTIAL_ROUTES for those volumes only."""

    def require_token(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if creds is not None and hmac.compare_digest(creds.credentials.encode(), token.encode()):
            return
        volumes = scoped(creds.credentials) if creds is not None and scoped else None
        if volumes is None:
            raise GfsError("unauthorized", "unauthorized", "missing or wrong bearer token")
        route = request.scope.get("route")
        # The route's own template; with or without the router's /v1 prefix, by version.
        template = str(getattr(route, "path", "")).removeprefix("/v1")
        if (request.method, template) not in CREDENTIAL_ROUTES:
            raise GfsError(
                "forbidden", "credential_scope", "a volume credential may only read volume layouts"
            )
        volume = request.path_params.get("name", "")
        if volume not in volumes:
            raise GfsError(
                "forbidden",
                "credential_scope",
                f"this credential is not for volume {volume} (it is for {', '.join(sorted(volumes))})",
            )

    app = FastAPI(
        title="gfsd",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(GfsError)
    async def on_gfs_error(_: Request, exc: GfsError) -> JSONResponse:
        resp = error(exc.http_status, exc.code, exc.message, exc.details)
        if exc.http_status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = {
            "errors": [
                {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                for e in exc.errors()
            ]
        }
        return error(400, "invalid_request", _validation_message(exc), details)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        resp = error(exc.status_code, code, str(exc.detail))
        resp.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route's methods; a path may have several.
            allowed: set[str] = set()
            for route in app.router.routes:
                match, _ = route.matches(request.scope)
                if match != Match.NONE:
                    allowed |= getattr(route, "methods", set()) or set()
            resp.headers["Allow"] = ", ".join(sorted(allowed))
        return resp

    @app.exception_handler(Exception)
    async def on_bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error(500, "internal", f"internal error: {type(exc).__name__}")

    @app.get("/v1/health", response_model=m.Health, tags=["health"])
    def health() -> m.Health:
        return m.Health(status="ok", version=__version__)

    for router in routers:
        app.include_router(router, prefix="/v1", dependencies=[Depends(require_token)])
    return app
