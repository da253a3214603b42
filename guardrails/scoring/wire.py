"""The scorer service's JSON API, shared by the service (``service.py``) and its client (``remote.py``).

    POST /v1/score        {"texts": [...], "classifiers": [ref, ...] or null, "admitted": false}
                       -> {"results": [{"classifier": ref, "head": "hate", "threshold": 0.71, "scores": [...]}],
                           "unavailable": {ref: why}, "identity": "..."}
    GET  /v1/classifiers  the same without scores: what the service can score

A classifier is named by its reference as written in the policy file's ``classifier:`` fields (a default
classifier's name, or a folder relative to the policy file), which is why the service and the proxies read the same
policy file. ``classifiers: null`` asks for every one the service loaded. ``threshold`` is the classifier's
calibrated one (a check's own ``threshold:`` is applied by the proxy). A reference the service cannot score is
listed in ``unavailable`` with the reason instead of failing the request, so the other classifiers are still
answered. Errors are OpenAI-style ``{"error": {"message", "type", "code"}}``: 429 ``classifier_queue_full`` with
``Retry-After``, 503 ``not_ready`` while the classifiers load, 400 ``invalid_request``, 401 ``invalid_api_key``.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    texts: list[str]
    classifiers: list[str] | None = None  # references as written in the policy file; None: all loaded
    admitted: bool = False  # the texts belong to requests that were let in before (their output checks)


class ClassifierScores(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    classifier: str  # the reference, as asked
    head: str  # the classifier's category (hate, violence, ...)
    threshold: float = Field(ge=0.0, le=1.0)  # calibrated
    scores: list[float]  # one per text, in order

    @field_validator("scores")
    @classmethod
    def _probabilities(cls, values: list[float]) -> list[float]:
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
            raise ValueError("every score must be a probability in [0, 1]")
        return values


class ScoreResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    results: list[ClassifierScores]
    unavailable: dict[str, str] = Field(default_factory=dict)  # reference -> why it cannot be scored
    identity: str = ""  # what the scores depend on (safety model, heads)
