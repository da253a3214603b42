"""A request id on every response (``X-Request-ID``), and request counts and latencies for /metrics."""

from __future__ import annotations

import re
import time
import uuid

from shieldkit.guardrails.metrics import Metrics

VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
KNOWN_PATHS = frozenset({"/v1/chat/completions", "/v1/moderations", "/v1/check", "/v1/models", "/healthz", "/readyz", "/metrics"})


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
        status = {"code": 500}

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.request_latency.labels(endpoint).observe(time.perf_counter() - started)
