"""Operations: liveness and readiness (always open, for health checks), and Prometheus metrics and the API
documentation (/openapi.json, /docs, /redoc), which need a valid key when keys are configured unless the setting
``public_docs_and_metrics`` opens them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from shieldkit.guardrails.api.deps import OpsCaller, ServicesDep
from shieldkit.guardrails.api.openapi import errors

router = APIRouter(tags=["operations"])
READINESS = {"type": "object", "required": ["status"], "properties": {
    "status": {"enum": ["loading", "ready", "failed"]}, "upstream": {"type": ["string", "null"]},
    "scorer": {"type": "string", "description": "in-process, or the scorer service's URL"},
    "classifiers": {"type": "object"}, "unavailable_classifiers": {"type": "object"}, "error": {"type": "string"}}}


@router.get("/healthz", responses=errors(500))
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", responses={
    200: {"description": "Ready", "content": {"application/json": {"schema": READINESS}}},
    503: {"description": "Loading, or failed to start", "content": {"application/json": {"schema": READINESS}}},
    **errors(500)})
async def readyz(services: ServicesDep):
    startup, scorer = services.startup, services.scorer
    body = {"status": startup.state, "upstream": startup.upstream.name if startup.upstream else None,
            "scorer": services.settings.scorer_url or "in-process", "classifiers": scorer.available, "unavailable_classifiers": scorer.unavailable}
    if startup.state == "failed":
        body["error"] = startup.error
    return JSONResponse(body, status_code=200 if startup.state == "ready" else 503)


@router.get("/metrics", response_class=PlainTextResponse, responses=errors(401, 429, 500))
async def metrics(services: ServicesDep, _caller: OpsCaller):
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, _caller: OpsCaller) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request, _caller: OpsCaller) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - docs")


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request, _caller: OpsCaller) -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} - ReDoc")
