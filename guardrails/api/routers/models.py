"""GET /v1/models and /v1/models/{model}: what the upstream serves (and the caller's key may use)."""

from __future__ import annotations

from fastapi import APIRouter

from shieldkit.guardrails.api.deps import AnyKeyCaller, ServicesDep
from shieldkit.guardrails.api.errors import NotFound
from shieldkit.guardrails.api.openapi import errors
from shieldkit.guardrails.api.routers.errors import upstream_api_error
from shieldkit.guardrails.upstream import UpstreamError

router = APIRouter(tags=["models"])


async def _model_ids(caller, services) -> list[str]:
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
    return ids


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "shieldkit"}


@router.get("/v1/models", responses=errors(401, 429, 500, 502, 504))
async def list_models(caller: AnyKeyCaller, services: ServicesDep):
    return {"object": "list", "data": [_model(i) for i in await _model_ids(caller, services)]}


@router.get("/v1/models/{model_id:path}", responses=errors(401, 404, 429, 500, 502, 504))
async def retrieve_model(model_id: str, caller: AnyKeyCaller, services: ServicesDep):
    ids = await _model_ids(caller, services)
    if model_id not in ids:
        raise NotFound(f"no model {model_id!r} here (models: {', '.join(ids) or 'none'})", param="model",
                       code="model_not_found")
    return _model(model_id)
