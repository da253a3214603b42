"""POST /v1/moderations: OpenAI's moderation shape, answered by the policy's safety classifiers (which read the
normalised view of each input, as classifier checks do)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from shieldkit.guardrails import shapes
from shieldkit.guardrails.api_errors import GuardrailFailed, NotReady
from shieldkit.guardrails.checks import BuildContext
from shieldkit.guardrails.checks.classifier import resolve_ref
from shieldkit.guardrails.deps import ModerationBody, ModerationCaller, ReadyServices
from shieldkit.guardrails.normalise import normalise
from shieldkit.guardrails.openapi import errors, json_body
from shieldkit.guardrails.schemas import ModerationRequest
from shieldkit.guardrails.services import Services

router = APIRouter(tags=["moderations"])
# Our policy names where OpenAI's moderation categories call them differently.
OPENAI_CATEGORY = {"self_harm": "self-harm", "dangerous": "illicit"}


def moderation_classifiers(services: Services, policy: str) -> list[tuple[str, str, float | None]]:
    """(category, ref, threshold override) for the policy's classifier checks; all loaded ones if it has none."""
    available = services.batcher.available
    chosen: dict[str, tuple[str, str, float | None]] = {}
    for name, _direction, config in services.policies.classifier_checks():
        if name != policy:
            continue
        ref = resolve_ref(config.classifier, BuildContext(services.policies.base_dir))
        if ref in available and ref not in chosen:
            chosen[ref] = (OPENAI_CATEGORY.get(available[ref], available[ref]), ref, config.threshold)
    if not chosen:
        chosen = {ref: (OPENAI_CATEGORY.get(name, name), ref, None) for ref, name in available.items()}
    return list(chosen.values())


@router.post("/v1/moderations", openapi_extra=json_body(ModerationRequest),
             responses=errors(400, 401, 403, 413, 429, 500, 503))
async def moderations(caller: ModerationCaller, services: ReadyServices, body: ModerationBody):
    classifiers = moderation_classifiers(services, caller.policy)
    if not classifiers:
        raise NotReady("no safety classifiers are loaded, so moderation is unavailable", code="classifiers_unavailable")
    texts = [normalise(text).text for text in ([body.input] if isinstance(body.input, str) else body.input)]
    try:
        scored = await asyncio.gather(*(services.batcher.score(texts, ref) for _, ref, _ in classifiers))
    except Exception as exc:
        raise GuardrailFailed(f"the moderation classifiers failed: {exc}") from None
    results = []
    for index in range(len(texts)):
        categories, category_scores = {}, {}
        for (category, _ref, override), (scores, calibrated) in zip(classifiers, scored):
            cut = calibrated if override is None else override
            category_scores[category] = round(scores[index], 6)
            categories[category] = scores[index] >= cut
        results.append({"flagged": any(categories.values()), "categories": categories,
                        "category_scores": category_scores})
    return {"id": shapes.new_id("modr"), "model": body.model or "shieldkit-moderation", "results": results}
