"""The outermost layer of the app: a request id on every response (``X-Request-ID``), request counts and latencies
for /metrics, and the last line of defence against unexpected errors.

An exception that escapes the app becomes a JSON 500 here (logged with its traceback) instead of reaching the
server: uvicorn would log it and then close the kept-alive connection without ``Connection: close``, so a pooled
client's next request on it would fail with ECONNRESET. Every 500 carries ``Connection: close``: after an
unexpected error the connection is not reused. (If the error comes after the response has started, nothing can be
added to it any more; the exception goes on to the server, which ends the connection.)
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from shieldkit.guardrails.api.errors import InternalError
from shieldkit.guardrails.ops.metrics import Metrics

log = logging.getLogger("shieldkit.guardrails")
VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
KNOWN_PATHS = frozenset({"/v1/chat/completions", "/v1/moderations", "/v1/check", "/v1/models", "/healthz", "/readyz",
                         "/metrics", "/openapi.json", "/docs", "/redoc"})


def internal_error(request_id: str) -> InternalError:
    return InternalError(f"internal error (request id {request_id}); nothing was sent to the model or returned unchecked")


class RequestContext:
    """Pure ASGI (streaming responses pass through untouched)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if VALID_ID.match(incoming) else f"req_{uuid.uuid4().hex[:24]}"
        scope.setdefault("state", {})["request_id"] = request_id
        endpoint = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
        started = time.perf_counter()
        response = {"status": 500, "started": False}

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["started"] = message["status"], True
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                if message["status"] == 500:
                    headers = [h for h in headers if h[0].lower() != b"connection"] + [(b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error("unexpected error in request %s", request_id, exc_info=exc)
            if response["started"]:
                raise
            body = json.dumps(internal_error(request_id).body()).encode()
            await send_with_id({"type": "http.response.start", "status": 500,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            self.metrics.requests.labels(endpoint, str(response["status"])).inc()
            self.metrics.request_latency.labels(endpoint).observe(time.perf_counter() - started)
