"""Start-up: the upstream and the models the proxy needs, loaded in the background, and whether it is ready.

The HTTP upstream is built at once; the Gemma runtime (for the embedded upstream and for the classifiers) and the
classifier bank load in a thread once the server runs, so ``/healthz`` answers at once and ``/readyz`` says when
loading is done (or why it failed; ``on_fatal`` lets the CLI stop the server then).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from shieldkit.guardrails.ops.loading import BackgroundLoad
from shieldkit.guardrails.settings import ProxySettings
from shieldkit.guardrails.upstream import Upstream

if TYPE_CHECKING:
    from shieldkit.guardrails.ops.metrics import Metrics
    from shieldkit.guardrails.scoring import ManagedScorer
    from shieldkit.model.runtime import GemmaRuntime

log = logging.getLogger("shieldkit.guardrails")


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


def http_upstream(settings: ProxySettings) -> Upstream | None:
    if not settings.upstream:
        return None
    from shieldkit.guardrails.upstream.openai_http import OpenAIUpstream

    key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
    return OpenAIUpstream(settings.upstream, api_key=key, connect_timeout=settings.upstream_connect_timeout,
                          read_timeout=settings.upstream_timeout, max_connections=settings.upstream_max_connections)


class Startup(BackgroundLoad):
    def __init__(self, settings: ProxySettings, scorer: ManagedScorer, metrics: Metrics, *,
                 runtime: GemmaRuntime | None = None, upstream: Upstream | None = None) -> None:
        self.settings = settings
        self.scorer = scorer
        self.metrics = metrics
        self.runtime = runtime
        self.upstream = upstream if upstream is not None else http_upstream(settings)
        self.model_id = served_model_id(settings, runtime)
        super().__init__("the proxy", metrics.ready, log)

    async def wait_ready(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        self._cancel()
        if self.upstream is not None:
            await self.upstream.aclose()

    def ready_summary(self) -> str:
        return f"upstream {self.upstream.name}, classifiers {', '.join(self.scorer.available.values()) or 'none'}"

    def _load_models(self) -> None:
        if self.runtime is None and (self.upstream is None or self.scorer.needs_model):
            from shieldkit.model.runtime import GemmaRuntime
            from shieldkit.progress import progress_enabled

            self.runtime = GemmaRuntime.load(self.settings.model, progress=progress_enabled())
        self.scorer.load(self.runtime)
        if self.upstream is None:
            from shieldkit.guardrails.upstream.gemma import GemmaUpstream

            s = self.settings
            self.upstream = GemmaUpstream(self.runtime, self.model_id, workers=s.generation_workers,
                                          default_max_tokens=s.default_max_tokens, max_tokens_limit=s.max_tokens_limit,
                                          default_temperature=s.default_temperature)
            self.runtime.decode_step()  # the decoding path (llama.cpp or an int8 copy) is built before any request
