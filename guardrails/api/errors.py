"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}`` with the right HTTP status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    type = "invalid_request_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else type(self).code
        self.status = status if status is not None else type(self).status
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code, **self.extra}}


class InvalidRequest(ApiError):
    code = "invalid_request"


class ClientDisconnected(ApiError):
    """The client went away before sending its whole body: nothing was checked or forwarded, and nobody is left to
    read the answer (logged and counted as a 400, not as a server error)."""

    code = "client_disconnected"


class RequestTooLarge(ApiError):
    status = 413
    code = "request_too_large"


class Unauthorized(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(ApiError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class QueueFull(RateLimited):
    """The classifier queue is full: retry after ``Retry-After`` seconds (admission control, not a failure)."""

    code = "classifier_queue_full"


class RateLimitUnavailable(ApiError):
    """The rate limiter's storage failed: requests that need a limit are refused (fail closed)."""

    status = 503
    type = "server_error"
    code = "rate_limit_unavailable"


class ContentFiltered(ApiError):
    """A blocked input (Azure OpenAI's convention: 400, code content_filter, what fired in innererror)."""

    status = 400
    code = "content_filter"


class NotReady(ApiError):
    status = 503
    type = "server_error"
    code = "not_ready"


class GuardrailFailed(ApiError):
    """A check failed and its policy says ``on_error: block``: nothing is forwarded."""

    status = 503
    type = "server_error"
    code = "guardrail_error"


class UpstreamFailed(ApiError):
    status = 502
    type = "server_error"
    code = "upstream_error"


class UpstreamTimeout(ApiError):
    status = 504
    type = "server_error"
    code = "upstream_timeout"


class InternalError(ApiError):
    status = 500
    type = "server_error"
    code = "internal_error"
