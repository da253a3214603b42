"""Everything one app instance owns: policies and their guards, the upstream, the classifier batcher, the audit
log, metrics, rate limits and the readiness state. Built by ``create_app``; models load in the background."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shieldkit.errors import ConfigError
from shieldkit.guardrails.audit import AuditEvent, AuditLog
from shieldkit.guardrails.batcher import MicroBatcher
from shieldkit.guardrails.checks import BuildContext
from shieldkit.guardrails.checks.classifier import resolve_ref
from shieldkit.guardrails.classifier_api import (
    PROMISED_DEFAULT_POLICIES,
    BankLoader,
    ClassifiersUnavailable,
    classifier_api,
    policy_names,
    ref_problem,
    thresholds,
)
from shieldkit.guardrails.engine import Verdict
from shieldkit.guardrails.metrics import Metrics
from shieldkit.guardrails.policy import LoadedPolicies, build_guards
from shieldkit.guardrails.ratelimit import RateLimits
from shieldkit.guardrails.settings import ProxySettings
from shieldkit.guardrails.upstream import Upstream

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

log = logging.getLogger("shieldkit.guardrails")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def served_model_id(settings: ProxySettings, runtime: GemmaRuntime | None = None) -> str:
    """The id the embedded model answers to: ``served_model``, else one derived from the model source."""
    if settings.served_model:
        return settings.served_model
    if runtime is not None:
        kind, path = runtime.info.source_kind, runtime.info.source_path
        model = {"embedded": "embedded", "tiny": "tiny-random"}.get(kind, path or runtime.info.name)
    else:
        model = settings.model.model
    if model == "embedded":
        return "gemma-3-270m"
    return model if model == "tiny-random" else Path(model).name.removesuffix(".gguf")


@dataclass
class ClassifierPlan:
    """Which classifier refs to load, and which are unavailable (only checks with on_error: allow may use those)."""

    load: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    blocking: set[str] = field(default_factory=set)  # refs used by a check with on_error: block


def plan_classifiers(loaded: LoadedPolicies, *, injected: bool) -> ClassifierPlan:
    """Cheap, before anything loads: refuse to start on a classifier check that cannot work and blocks on error."""
    plan = ClassifierPlan()
    uses: dict[str, list[str]] = {}
    for policy, direction, config in loaded.classifier_checks():
        ref = resolve_ref(config.classifier, BuildContext(loaded.base_dir))
        uses.setdefault(ref, []).append(f"{policy}/{direction}/{config.name}")
        if config.on_error == "block":
            plan.blocking.add(ref)
    if not uses:
        return plan
    api_problem, names = None, PROMISED_DEFAULT_POLICIES
    if not injected:
        try:
            names = classifier_api().default_policies
        except ClassifiersUnavailable as exc:
            api_problem = str(exc)
    fatal = []
    for ref, checks in uses.items():
        problem = api_problem or ref_problem(ref, names)
        if problem is None:
            plan.load.append(ref)
        elif ref in plan.blocking:
            fatal.append(f"classifier check(s) {', '.join(checks)} cannot run: {problem} (on_error: block)")
        else:
            plan.unavailable[ref] = problem
            log.warning("UNAVAILABLE classifier checks %s: %s. They have on_error: allow, so texts pass them "
                        "unchecked and every request reports them as errored.", ", ".join(checks), problem)
    if fatal:
        raise ConfigError(f"{loaded.source}: " + "; ".join(fatal))
    return plan


class Services:
    def __init__(self, settings: ProxySettings, policies: LoadedPolicies, *, runtime: GemmaRuntime | None = None,
                 bank_loader: BankLoader | None = None, upstream: Upstream | None = None) -> None:
        self.settings = settings
        self.policies = policies
        self.metrics = Metrics()
        self.batcher = MicroBatcher(settings.batch_window_ms, settings.batch_max_texts,
                                    on_batch=self.metrics.classifier_batch.observe)
        self.guards = build_guards(policies, BuildContext(policies.base_dir, self.batcher),
                                   timeout_s=settings.check_timeout, observer=self.metrics)
        self.keys = {key.sha256: key for key in policies.file.keys}
        self.limits = RateLimits(settings, policies.file.keys)  # refuses per-process limits shared by workers
        self.audit = AuditLog(settings.resolved_audit_path) if settings.audit else None
        if self.audit is not None:
            self.audit.check()
        self.classifier_plan = plan_classifiers(policies, injected=bank_loader is not None)
        self.runtime = runtime
        self.upstream = upstream
        if self.upstream is None and settings.upstream:
            from shieldkit.guardrails.upstream.openai_http import OpenAIUpstream

            key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
            self.upstream = OpenAIUpstream(settings.upstream, api_key=key, connect_timeout=settings.upstream_connect_timeout,
                                           read_timeout=settings.upstream_timeout, max_connections=settings.upstream_max_connections)
        self.model_id = served_model_id(settings, runtime)
        self.state: Literal["loading", "ready", "failed"] = "loading"
        self.error: str | None = None
        self.on_fatal: Callable[[str], None] | None = None  # the CLI stops the server with it
        self._bank_loader = bank_loader
        self._load_task: asyncio.Task | None = None
        self._open_answers: set[str] = set()  # audit tokens of forwarded requests whose output is not recorded yet

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.audit is not None:
            self.audit.open()
        self._load_task = asyncio.create_task(self._load())

    async def wait_ready(self) -> None:
        if self._load_task is not None:
            await asyncio.shield(self._load_task)

    async def aclose(self) -> None:
        await self._settle_answers(timeout=2.0)
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        if self.upstream is not None:
            await self.upstream.aclose()
        self.batcher.close()
        if self.audit is not None:
            self.audit.close()

    async def _settle_answers(self, timeout: float) -> None:
        """Give requests that the server cancelled at shutdown a moment to record their outcome (their clean-up
        runs on this loop). Answers still open after ``timeout`` are marked interrupted when the audit log closes."""
        deadline = time.monotonic() + timeout
        while self._open_answers and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _load(self) -> None:
        try:
            await asyncio.to_thread(self._load_models)
            if self.upstream is None:
                from shieldkit.guardrails.upstream.gemma import GemmaUpstream

                s = self.settings
                self.upstream = GemmaUpstream(self.runtime, self.model_id, workers=s.generation_workers,
                                              default_max_tokens=s.default_max_tokens, max_tokens_limit=s.max_tokens_limit,
                                              default_temperature=s.default_temperature)
        except Exception as exc:
            self.state, self.error = "failed", str(exc) or type(exc).__name__
            log.error("the proxy cannot serve: %s", self.error, exc_info=not isinstance(exc, ConfigError))
            if self.on_fatal is not None:
                self.on_fatal(self.error)
            return
        self.state = "ready"
        self.metrics.ready.set(1)
        log.info("ready: upstream %s, classifiers %s", self.upstream.name,
                 ", ".join(self.batcher.available.values()) or "none")

    def _load_models(self) -> None:
        plan = self.classifier_plan
        if self.runtime is None and (self.upstream is None or plan.load):
            from shieldkit.model.runtime import GemmaRuntime
            from shieldkit.progress import progress_enabled

            self.runtime = GemmaRuntime.load(self.settings.model, progress=progress_enabled())
        bank, names, cuts, unavailable = None, {}, {}, dict(plan.unavailable)
        if plan.load:
            try:
                loader = self._bank_loader or classifier_api().load_bank
                bank = loader(plan.load, self.runtime)
                names = policy_names(bank, plan.load)
                cuts = thresholds(bank, names)
            except Exception as exc:
                reason = f"loading classifiers {', '.join(plan.load)} failed: {exc}"
                blocking = [ref for ref in plan.load if ref in plan.blocking]
                if blocking:
                    raise ConfigError(f"{reason} (checks with on_error: block use {', '.join(blocking)})") from exc
                log.error("UNAVAILABLE classifiers (on_error: allow, texts pass them unchecked): %s", reason)
                bank, names, cuts = None, {}, {}
                unavailable.update({ref: reason for ref in plan.load})
        self.batcher.attach(bank, names, cuts, unavailable)

    # --- per request -------------------------------------------------------------------------------------------

    def audit_event(self, *, request_id: str, key_id: str | None, policy: str, endpoint: str, verdict: Verdict,
                    text: str | None = None, outcomes: list[dict[str, Any]] | None = None, opens: bool = False,
                    closes: str | None = None) -> str | None:
        """Record one checked direction. ``opens``: this input goes on to the model, so an output event must
        follow; returns the token that event ``closes`` (until then the answer is pending, see ``audit``)."""
        self.metrics.decided(verdict)
        if self.audit is None:
            return None
        keep = self.policies.file.policies[policy].audit.keep_text
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
