"""Operations: liveness, readiness (models loaded) and Prometheus metrics. Not behind API keys: expose them only
to your infrastructure."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from shieldkit.guardrails.deps import ServicesDep
from shieldkit.guardrails.openapi import errors

router = APIRouter(tags=["operations"])
READINESS = {"type": "object", "required": ["status"], "properties": {
    "status": {"enum": ["loading", "ready", "failed"]}, "upstream": {"type": ["string", "null"]},
    "classifiers": {"type": "object"}, "unavailable_classifiers": {"type": "object"}, "error": {"type": "string"}}}


@router.get("/healthz", responses=errors(500))
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", responses={
    200: {"description": "Ready", "content": {"application/json": {"schema": READINESS}}},
    503: {"description": "Loading, or failed to start", "content": {"application/json": {"schema": READINESS}}},
    **errors(500)})
async def readyz(services: ServicesDep):
    body = {"status": services.state, "upstream": services.upstream.name if services.upstream else None,
            "classifiers": services.batcher.available, "unavailable_classifiers": services.batcher.unavailable or services.classifier_plan.unavailable}
    if services.state == "failed":
        body["error"] = services.error
    return JSONResponse(body, status_code=200 if services.state == "ready" else 503)


@router.get("/metrics", response_class=PlainTextResponse, responses=errors(500))
async def metrics(services: ServicesDep):
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
