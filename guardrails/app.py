"""``create_app(settings)``: the guardrail proxy as a FastAPI app. Nothing is built at import time; models load in
the background once the server starts (``/readyz`` says when)."""

from __future__ import annotations

import os
import signal
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from shieldkit import __version__
from shieldkit.guardrails.api.errors import ApiError, InvalidRequest, QueueFull
from shieldkit.guardrails.api.middleware import RequestContext
from shieldkit.guardrails.api.openapi import install_openapi
from shieldkit.guardrails.api.routers import ROUTERS
from shieldkit.guardrails.api.schemas import REQUEST_MODELS
from shieldkit.guardrails.checks.base import Overloaded
from shieldkit.guardrails.policy import load_policy_file
from shieldkit.guardrails.scoring import BankLoader
from shieldkit.guardrails.services import Services
from shieldkit.guardrails.settings import ProxySettings

if TYPE_CHECKING:
    from shieldkit.guardrails.upstream import Upstream
    from shieldkit.model.runtime import GemmaRuntime

STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def create_app(settings: ProxySettings | None = None, *, runtime: GemmaRuntime | None = None,
               bank_loader: BankLoader | None = None, upstream: Upstream | None = None) -> FastAPI:
    """The proxy app. ``runtime`` reuses a loaded Gemma, ``bank_loader`` replaces
    the classifiers package's ``load_bank`` and ``upstream`` replaces the configured upstream (tests, embedding)."""
    settings = settings or ProxySettings.create()
    services = Services(settings, load_policy_file(settings.policy), runtime=runtime, bank_loader=bank_loader,
                        upstream=upstream)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await services.start()
        try:
            yield
        finally:
            await services.aclose()

    # /docs, /redoc and /openapi.json are routes of the ops router, behind API keys when keys are configured
    app = FastAPI(title="shieldkit guardrail proxy", version=__version__, lifespan=lifespan,
                  description="An OpenAI-compatible proxy that checks inputs and outputs against a policy.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app, REQUEST_MODELS, max_items=settings.max_messages, keys=bool(services.keys))
    install_error_handlers(app)
    app.add_middleware(RequestContext, metrics=services.metrics)
    return app


WORKER_STOP_ENV = "SHIELDKIT_WORKERS_STOP_FILE"  # set by `shieldkit serve --workers N` for its workers


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory shieldkit.guardrails.app:app_from_env`` (settings from SHIELDKIT_PROXY_*).
    A worker of ``shieldkit serve --workers N`` whose models cannot load stops the whole server, as one process
    does: it writes why to the file ``WORKER_STOP_ENV`` names and sends SIGTERM to the supervisor."""
    app = create_app(ProxySettings.create())
    stop_file = os.environ.get(WORKER_STOP_ENV)
    if stop_file:
        app.state.services.startup.on_fatal = lambda message: _stop_workers(Path(stop_file), message)
    return app


def _stop_workers(stop_file: Path, message: str) -> None:
    stop_file.write_text(message, encoding="utf-8")
    os.kill(os.getppid(), signal.SIGTERM)  # uvicorn's supervisor stops every worker and returns


def _error_response(request: Request, error: ApiError) -> JSONResponse:
    headers = dict(error.headers)
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        headers["X-Request-ID"] = request_id
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """OpenAI-style JSON for the app's own errors; anything unexpected becomes a 500 in ``RequestContext``."""

    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(request, exc)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = f"no endpoint {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        error = ApiError(message, code=STATUS_CODES.get(exc.status_code, "http_error"), status=exc.status_code,
                         headers=dict(exc.headers or {}))
        return _error_response(request, error)

    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return _error_response(request, QueueFull(str(exc), headers={"Retry-After": str(exc.retry_after)}))

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first["loc"][1:]) or None
        return _error_response(request, InvalidRequest(f"{param or 'request'}: {first['msg']}", param=param))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Overloaded, overloaded)
    app.add_exception_handler(RequestValidationError, validation_error)
