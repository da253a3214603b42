"""What one app instance owns, wired in dependency order: the classifier scorer (in-process, or the client of the
scorer service) before the guards that ask it, then keys and rate limits, the audit log and its recorder, and the
start-up that loads the models. Each part keeps its own state and lifecycle; ``start`` and ``aclose`` only call them
in order. Built by ``create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldkit.guardrails.checks import BuildContext
from shieldkit.guardrails.ops.audit import AuditLog
from shieldkit.guardrails.ops.metrics import Metrics
from shieldkit.guardrails.ops.ratelimit import RateLimits
from shieldkit.guardrails.ops.recorder import AuditRecorder
from shieldkit.guardrails.ops.startup import Startup
from shieldkit.guardrails.policy import LoadedPolicies, build_guards
from shieldkit.guardrails.scoring import BankLoader, ClassifierScorer, ManagedScorer, ScoringOptions
from shieldkit.guardrails.scoring.remote import RemoteScorer
from shieldkit.guardrails.settings import ProxySettings
from shieldkit.guardrails.upstream import Upstream

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime


def scoring_options(settings: ProxySettings) -> ScoringOptions:
    return ScoringOptions(window_ms=settings.batch_window_ms, max_batch=settings.batch_max_texts,
                          per_request=settings.batch_texts_per_request,
                          max_queued=settings.classifier_queue_texts, max_wait_s=settings.resolved_queue_wait,
                          cache_size=settings.classifier_cache_size)


def build_scorer(settings: ProxySettings, policies: LoadedPolicies, bank_loader: BankLoader | None,
                 metrics: Metrics) -> ManagedScorer:
    """The in-process scorer, or the client of the scorer service when ``scorer_url`` names one."""
    if settings.scorer_url is None:
        return ClassifierScorer.for_policies(policies, scoring_options(settings), loader=bank_loader, observer=metrics)
    key = settings.scorer_api_key.get_secret_value() if settings.scorer_api_key else None
    return RemoteScorer.for_policies(policies, settings.scorer_url, options=scoring_options(settings), api_key=key,
                                     timeout=settings.resolved_scorer_timeout,
                                     connect_timeout=settings.scorer_connect_timeout, retries=settings.scorer_retries,
                                     observer=metrics)


class Services:
    def __init__(self, settings: ProxySettings, policies: LoadedPolicies, *, runtime: GemmaRuntime | None = None,
                 bank_loader: BankLoader | None = None, upstream: Upstream | None = None) -> None:
        self.settings = settings
        self.policies = policies
        self.metrics = Metrics()
        self.scorer = build_scorer(settings, policies, bank_loader, self.metrics)
        self.guards = build_guards(policies, BuildContext(policies.base_dir, self.scorer),
                                   timeout_s=settings.check_timeout, observer=self.metrics)
        self.keys = {key.sha256: key for key in policies.file.keys}
        self.limits = RateLimits(settings, policies.file.keys, self.metrics)  # refuses per-process limits shared by workers
        self.audit = AuditLog(settings.audit_target) if settings.audit else None
        if self.audit is not None:
            self.audit.check()
        self.recorder = AuditRecorder(self.audit, policies.file, self.metrics)
        self.startup = Startup(settings, self.scorer, self.metrics, runtime=runtime, upstream=upstream)

    async def start(self) -> None:
        if self.audit is not None:
            self.audit.open()
        await self.limits.probe()
        self.startup.start()

    async def aclose(self) -> None:
        await self.recorder.settle(timeout=2.0)
        await self.startup.aclose()
        await self.scorer.aclose()
        if self.audit is not None:
            self.audit.close()
        self.metrics.close()
