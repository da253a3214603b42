"""Turning upstream failures into OpenAI-style API errors."""

from __future__ import annotations

from shieldkit.guardrails.api.errors import ApiError, InvalidRequest, NotFound, RateLimited, UpstreamFailed, UpstreamTimeout
from shieldkit.guardrails.services import Services
from shieldkit.guardrails.upstream import UpstreamError


def upstream_api_error(services: Services, exc: UpstreamError) -> ApiError:
    services.metrics.upstream_errors.labels(str(exc.status)).inc()
    if exc.status == 504:
        return UpstreamTimeout(exc.message)
    if exc.status == 429:
        return RateLimited(exc.message, code=exc.code)
    if exc.status == 404:
        return NotFound(exc.message, param="model", code=exc.code or "model_not_found")
    if 400 <= exc.status < 500:
        return InvalidRequest(exc.message, code=exc.code, status=exc.status)
    return UpstreamFailed(exc.message)
