"""GET /v1/models: what the upstream serves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from shieldkit.guardrails.api.deps import Caller, ServicesDep, authenticate
from shieldkit.guardrails.api.openapi import errors
from shieldkit.guardrails.api.routers.errors import upstream_api_error
from shieldkit.guardrails.upstream import UpstreamError

router = APIRouter(tags=["models"])


@router.get("/v1/models", responses=errors(401, 429, 500, 502, 504))
async def list_models(caller: Annotated[Caller, Depends(authenticate)], services: ServicesDep):
    upstream = services.startup.upstream
    if upstream is None:  # the embedded model is still loading; its id is known already
        ids = [services.startup.model_id]
    else:
        try:
            ids = await upstream.models()
        except UpstreamError as exc:
            raise upstream_api_error(services, exc) from None
    if caller.key is not None and caller.key.models:
        ids = [i for i in ids if i in caller.key.models]
    return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "shieldkit"} for i in ids]}
