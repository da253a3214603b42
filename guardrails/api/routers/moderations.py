"""POST /v1/moderations: OpenAI's moderation shape, answered by the policy's safety classifiers through the same
scorer as the classifier checks (which read the normalised view of each input, as the checks do)."""

from __future__ import annotations

from fastapi import APIRouter

from shieldkit.guardrails.api import shapes
from shieldkit.guardrails.api.deps import ModerationBody, ModerationCaller, ReadyServices
from shieldkit.guardrails.api.errors import GuardrailFailed, NotReady
from shieldkit.guardrails.api.openapi import errors, json_body
from shieldkit.guardrails.api.schemas import ModerationRequest
from shieldkit.guardrails.checks.base import Overloaded
from shieldkit.guardrails.pipeline.normalise import normalise

router = APIRouter(tags=["moderations"])
# Our classifier names where OpenAI's moderation categories call them differently.
OPENAI_CATEGORY = {"self_harm": "self-harm", "dangerous": "illicit"}
# OpenAI's 13 categories, every one in every result (its client's types require them). Those no loaded classifier
# scores are false / 0.0 and absent from category_applied_input_types, which lists what was actually scored;
# classifiers OpenAI has no category for (prompt_injection, your own) are added under their own names.
OPENAI_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
                     "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
                     "violence/graphic")


@router.post("/v1/moderations", openapi_extra=json_body(ModerationRequest),
             responses=errors(400, 401, 403, 413, 429, 500, 503))
async def moderations(caller: ModerationCaller, services: ReadyServices, body: ModerationBody):
    heads = services.scorer.heads_for(caller.policy)
    if not heads:
        raise NotReady("no safety classifiers are loaded, so moderation is unavailable", code="classifiers_unavailable")
    texts = [normalise(text).text for text in ([body.input] if isinstance(body.input, str) else body.input)]
    try:
        scored = await services.scorer.score(texts, heads)
    except Overloaded:
        raise
    except Exception as exc:
        raise GuardrailFailed(f"the moderation classifiers failed: {exc}") from None
    results = []
    for index in range(len(texts)):
        categories = dict.fromkeys(OPENAI_CATEGORIES, False)
        category_scores = dict.fromkeys(OPENAI_CATEGORIES, 0.0)
        categories.update({OPENAI_CATEGORY.get(s.head, s.head): s.flagged[index] for s in scored})
        category_scores.update({OPENAI_CATEGORY.get(s.head, s.head): round(s.scores[index], 6) for s in scored})
        applied = {OPENAI_CATEGORY.get(s.head, s.head): ["text"] for s in scored}
        results.append({"flagged": any(categories.values()), "categories": categories,
                        "category_scores": category_scores, "category_applied_input_types": applied})
    return {"id": shapes.new_id("modr"), "model": body.model or "shieldkit-moderation", "results": results}
