"""POST /v1/check: check text against the policy without calling the model."""

from __future__ import annotations

from fastapi import APIRouter

from shieldkit.guardrails.api import shapes
from shieldkit.guardrails.api.deps import CheckBody, CheckCaller, ReadyServices, RequestId
from shieldkit.guardrails.api.errors import Forbidden, InvalidRequest
from shieldkit.guardrails.api.openapi import errors, json_body
from shieldkit.guardrails.api.schemas import CheckRequest
from shieldkit.guardrails.pipeline.vault import Vault

router = APIRouter(tags=["check"])


@router.post("/v1/check", openapi_extra=json_body(CheckRequest), responses=errors(400, 401, 403, 413, 429, 500, 503))
async def check(caller: CheckCaller, services: ReadyServices, body: CheckBody, request_id: RequestId):
    policy = caller.policy
    if body.policy is not None and body.policy != policy:
        if caller.key is not None:
            raise Forbidden(f"the API key '{caller.key.id}' is bound to the policy '{policy}'", param="policy")
        if body.policy not in services.guards:
            raise InvalidRequest(f"unknown policy '{body.policy}'; defined: {', '.join(services.guards)}", param="policy")
        policy = body.policy
    texts = [body.text] if isinstance(body.text, str) else list(body.text)
    verdict = await services.guards[policy][body.direction].run(texts, Vault())
    services.recorder.event(request_id=request_id, key_id=caller.key_id, policy=policy, endpoint="check",
                         verdict=verdict, text="\n".join(verdict.texts))
    blocked = verdict.blocked_by
    return {
        "id": shapes.new_id("chk"),
        "object": "check",
        "policy": policy,
        "direction": body.direction,
        "decision": verdict.decision,
        "blocked_by": blocked.name if blocked else None,
        "flagged": verdict.flagged,
        "texts": verdict.texts,
        "checks": [o.to_dict() for o in verdict.outcomes],
        "latency_ms": round(verdict.latency_ms, 3),
    }
