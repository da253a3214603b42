"""Recording checked directions in the audit log (and the decision metrics), and keeping every answer accounted
for: a forwarded request's output row must follow its input row (see ``audit.py``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shieldkit.guardrails.ops.audit import AuditEvent, AuditLog
from shieldkit.guardrails.ops.metrics import Metrics
from shieldkit.guardrails.pipeline.engine import Verdict
from shieldkit.guardrails.policy.schema import PolicyFile


class AuditRecorder:
    def __init__(self, audit: AuditLog | None, policies: PolicyFile, metrics: Metrics) -> None:
        self.audit = audit
        self.policies = policies
        self.metrics = metrics
        self._open_answers: set[str] = set()  # tokens of forwarded requests whose output is not recorded yet

    def event(self, *, request_id: str, key_id: str | None, policy: str, endpoint: str, verdict: Verdict,
              text: str | None = None, outcomes: list[dict[str, Any]] | None = None, opens: bool = False,
              closes: str | None = None) -> str | None:
        """Record one checked direction. ``opens``: this input goes on to the model, so an output event must
        follow; returns the token that event ``closes`` (until then the answer is pending, see ``audit``)."""
        self.metrics.decided(verdict)
        if self.audit is None:
            return None
        keep = self.policies.policies[policy].audit.keep_text
        blocked = verdict.blocked_by
        token = uuid.uuid4().hex if opens else None
        if token is not None:
            self._open_answers.add(token)
        self._open_answers.discard(closes)
        self.audit.record(AuditEvent(
            request_id=request_id, key_id=key_id, policy=policy, endpoint=endpoint, direction=verdict.direction,
            decision=verdict.decision, blocked_by=blocked.name if blocked else None, latency_ms=round(verdict.latency_ms, 3),
            checks=outcomes if outcomes is not None else [o.to_dict() for o in verdict.outcomes],
            text=text if keep else None, opens=token, closes=closes,
        ))
        return token

    @contextmanager
    def no_answer_on_error(self, token: str | None, *, request_id: str, key_id: str | None, policy: str,
                           endpoint: str) -> Iterator[None]:
        """If the block raises, the client gets an error instead of an answer: record an output event with
        decision ``error`` that closes ``token``."""
        try:
            yield
        except BaseException:
            if self.audit is not None and token is not None:
                self._open_answers.discard(token)
                self.audit.record(AuditEvent(
                    request_id=request_id, key_id=key_id, policy=policy, endpoint=endpoint, direction="output",
                    decision="error", blocked_by=None, latency_ms=0.0, checks=[], closes=token))
            raise

    async def settle(self, timeout: float) -> None:
        """Give requests that the server cancelled at shutdown a moment to record their outcome (their clean-up
        runs on this loop). Answers still open after ``timeout`` are marked interrupted when the audit log closes."""
        deadline = time.monotonic() + timeout
        while self._open_answers and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
