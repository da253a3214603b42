"""Streaming with output checks that are never bypassed.

Upstream text is held back and released in windows (sentence ends, or every N tokens; never across a possible
secret or PII value, see ``windows.py``): each window is checked -- together with the tail of what was already
released, so checks see across cuts -- before any of it is sent. On a violation the last chunk carries the policy's
refusal and ``finish_reason: "content_filter"``; nothing past the violation is sent. The same ending, reported as the
check ``stream.hold_chars``, refuses text that could not be cut safely within the policy's hold limit. If the
upstream fails mid-way, the held-back text is dropped and an error event ends the stream. The upstream keeps
generating into a queue while a window is being checked, so checks and generation overlap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import anyio

from shieldkit.guardrails.api import errors, shapes
from shieldkit.guardrails.checks.base import Overloaded
from shieldkit.guardrails.pipeline.engine import CheckOutcome, Guard, Verdict
from shieldkit.guardrails.pipeline.vault import Vault
from shieldkit.guardrails.pipeline.windows import WindowCutter, redact_holders
from shieldkit.guardrails.policy.schema import Policy
from shieldkit.guardrails.upstream import UpstreamError, UpstreamStream

log = logging.getLogger("shieldkit.guardrails")
HOLD_CONTEXT = 256  # released characters the window cutter reads before the held text (look-behinds, word starts)
HOLD_LIMIT = "stream.hold_chars"  # the name under which refused, uncuttable text is reported


class WindowChecker:
    """Checks consecutive windows of one stream and keeps the per-check totals for the audit log."""

    def __init__(self, guard: Guard, vault: Vault, context_chars: int, prefill: str = "") -> None:
        self.guard = guard
        self.vault = vault
        self.context_chars = context_chars
        self.prefill = prefill  # the checked assistant message the upstream continues: context, never sent again
        self.released = ""  # checked (redacted, not restored) text sent so far
        self.outcomes: dict[str, CheckOutcome] = {}
        self.latency_ms = 0.0
        self.changed = False
        self.blocked_by: CheckOutcome | None = None

    async def check(self, window: str) -> str | None:
        """The text to send for ``window`` (redacted, the user's own values restored), or None if it must be
        withheld. Restorable values the user did not send are put back before the checks, so they judge them."""
        context = self.before(self.context_chars) if self.context_chars else ""
        window = self.vault.restore_unsent(window)
        verdict = await self.guard.run([context + window], self.vault, skip=[len(context)])
        self._add(verdict)
        if verdict.blocked_by is not None:
            self.blocked_by = verdict.blocked_by
            return None
        checked = verdict.texts[0][len(context):]
        self.released += checked
        return self.vault.restore(checked)

    def before(self, chars: int) -> str:
        """The last ``chars`` characters the next window follows: the prefill, then what was released."""
        return (self.prefill[-chars:] + self.released)[-chars:]

    def refuse_held(self) -> None:
        """Record that held text was refused because no safe cut came within the hold limit."""
        self.blocked_by = CheckOutcome(HOLD_LIMIT, "stream", "block", "block", None, None, True, None, 0.0)
        self.outcomes[HOLD_LIMIT] = self.blocked_by

    def _add(self, verdict: Verdict) -> None:
        self.latency_ms += verdict.latency_ms
        self.changed = self.changed or verdict.changed
        for outcome in verdict.outcomes:
            seen = self.outcomes.get(outcome.name)
            if seen is None:
                self.outcomes[outcome.name] = replace(outcome, findings=[])
                continue
            scores = [s for s in (seen.score, outcome.score) if s is not None]
            self.outcomes[outcome.name] = replace(
                seen, score=max(scores) if scores else None, fired=seen.fired or outcome.fired,
                error=seen.error or outcome.error, latency_ms=seen.latency_ms + outcome.latency_ms,
                residual=seen.residual or outcome.residual,
            )

    def verdict(self) -> Verdict:
        return Verdict("output", [self.released], list(self.outcomes.values()), self.latency_ms, self.changed)


@dataclass
class StreamJob:
    guard: Guard
    policy: Policy
    vault: Vault
    model: str
    include_usage: bool
    started: float  # perf_counter at request start
    prefill: str = ""  # the checked text of a final assistant message, which upstreams like llama.cpp continue
    completion_id: str = field(default_factory=lambda: shapes.new_id("chatcmpl"))
    created: int = field(default_factory=lambda: int(time.time()))


async def guarded_sse(job: StreamJob, upstream: UpstreamStream, *, on_done, on_first_release=None) -> AsyncIterator[bytes]:
    """SSE bytes for the client. ``on_done(verdict, status)`` is called exactly once, however the stream ends."""
    cutter = WindowCutter(job.policy.stream, redact_holders(job.guard))
    checker = WindowChecker(job.guard, job.vault, job.policy.stream.context_chars, job.prefill)
    queue: asyncio.Queue = asyncio.Queue()
    pump = asyncio.create_task(_pump(upstream, queue))
    status, sent_any = "client_disconnected", False

    def chunk(delta: dict, finish: str | None = None, outcomes=None) -> bytes:
        return shapes.sse(shapes.chunk(job.completion_id, job.model, job.created, delta, finish, outcomes))

    try:
        yield chunk({"role": "assistant", "content": ""})
        pending, pieces, finished = "", 0, False
        while not finished:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            for kind, value in items:
                if kind == "piece":
                    pending, pieces = pending + value, pieces + 1
                elif kind == "end":
                    finished = True
                else:
                    status = "upstream_error"
                    failed = errors.UpstreamTimeout if value.status == 504 else errors.UpstreamFailed
                    yield shapes.sse(failed(value.message).body())
                    return
            while pending:
                size = cutter.cut(pending, pieces, context=checker.before(HOLD_CONTEXT), final=finished)
                if not size and not cutter.over_cap(pending):
                    break
                if size:
                    window, pending = pending[:size], pending[size:]
                    pieces = round(pieces * len(pending) / (len(pending) + size)) if pending else 0
                    text = await checker.check(window)
                else:  # held past the limit with no safe cut: refuse the rest rather than release it unchecked
                    checker.refuse_held()
                    text = None
                if text is None:
                    status = "blocked"
                    refusal = ("\n\n" if sent_any else "") + job.policy.refusal
                    yield chunk({"content": refusal}, "content_filter", checker.verdict().outcomes)
                    yield shapes.sse("[DONE]")
                    return
                if text:
                    if not sent_any and on_first_release is not None:
                        on_first_release(time.perf_counter() - job.started)
                    sent_any = True
                    yield chunk({"content": text})
        status = "completed"
        yield chunk({}, upstream.finish_reason or "stop")
        if job.include_usage and upstream.usage is not None:
            yield shapes.sse(shapes.usage_chunk(job.completion_id, job.model, job.created, upstream.usage.to_dict()))
        yield shapes.sse("[DONE]")
    except Overloaded as exc:  # the output checks could not be queued: withhold the rest, like any failed check
        status = "overloaded"
        yield shapes.sse(errors.QueueFull(f"{exc}; the rest of the answer was withheld").body())
    except Exception:  # a bug, not a fault of the upstream: end the stream as an error, never with unchecked text
        status = "internal_error"
        log.exception("streaming failed")
        yield shapes.sse(errors.InternalError("internal error while streaming; the rest of the answer was withheld").body())
    finally:
        with anyio.CancelScope(shield=True):
            pump.cancel()
            try:
                await pump
            except BaseException:  # noqa: BLE001 -- cancellation or an error already reported to the client
                pass
            await upstream.aclose()
            on_done(checker.verdict(), status)


async def _pump(upstream: UpstreamStream, queue: asyncio.Queue) -> None:
    try:
        async for piece in upstream:
            await queue.put(("piece", piece))
        await queue.put(("end", None))
    except UpstreamError as exc:
        await queue.put(("error", exc))
    except Exception as exc:  # never leave the consumer waiting: any failure ends the stream as an error
        log.exception("upstream stream failed")
        await queue.put(("error", UpstreamError(502, f"the upstream stream failed: {type(exc).__name__}")))
