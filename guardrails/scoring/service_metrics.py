"""The scorer service's Prometheus metrics, in a registry of its own (one per app, nothing global).

``shieldkit_scorer_batch_texts`` is a histogram of distinct texts per classifier pass: with several proxies
calling, its mean (``_sum / _count``) shows how far their texts are batched together.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ScorerMetrics:
    """Implements the scorer's ``ScoringObserver`` (batches, cache lookups) and counts the service's calls."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.batch_texts = Histogram("shieldkit_scorer_batch_texts", "Distinct texts per classifier pass",
                                     buckets=BATCH_BUCKETS, registry=r)
        self.cache = Counter("shieldkit_scorer_cache", "Score cache lookups, per text", ["result"], registry=r)
        self.requests = Counter("shieldkit_scorer_requests", "POST /v1/score calls by HTTP status", ["status"],
                                registry=r)
        self.texts = Counter("shieldkit_scorer_texts", "Texts asked for in POST /v1/score calls", registry=r)
        self.seconds = Histogram("shieldkit_scorer_request_seconds", "Time to answer POST /v1/score",
                                 buckets=SECONDS_BUCKETS, registry=r)
        self.ready = Gauge("shieldkit_scorer_ready", "1 once the classifiers are loaded", registry=r)
        self.queued = Gauge("shieldkit_scorer_queued_texts", "Distinct texts waiting for a classifier pass", registry=r)

    def watch_queue(self, queued: Callable[[], float]) -> None:
        self.queued.set_function(queued)

    def scored_batch(self, texts: int) -> None:
        self.batch_texts.observe(texts)

    def cache_lookups(self, hits: int, misses: int) -> None:
        if hits:
            self.cache.labels("hit").inc(hits)
        if misses:
            self.cache.labels("miss").inc(misses)

    def render(self) -> bytes:
        return generate_latest(self.registry)
