"""Prometheus metrics, in a registry owned by one app (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shieldkit.guardrails.pipeline.engine import CheckOutcome, Verdict

FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("shieldkit_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r)
        self.request_latency = Histogram("shieldkit_request_latency_seconds", "Request latency, to the last byte",
                                         ["endpoint"], buckets=SLOW_BUCKETS, registry=r)
        self.decisions = Counter("shieldkit_decisions", "Guard decisions", ["direction", "decision"], registry=r)
        self.check_results = Counter("shieldkit_check_results", "Check results by check (outcome: pass, fired, error)",
                                     ["check", "direction", "outcome"], registry=r)
        self.check_latency = Histogram("shieldkit_check_latency_seconds", "Time per check run", ["check", "direction"],
                                       buckets=FAST_BUCKETS, registry=r)
        self.upstream_errors = Counter("shieldkit_upstream_errors", "Upstream failures by HTTP status given to clients",
                                       ["status"], registry=r)
        self.stream_first_release = Histogram("shieldkit_stream_first_release_seconds",
                                              "Streaming: request start to the first checked text sent",
                                              buckets=SLOW_BUCKETS, registry=r)
        self.classifier_batch = Histogram("shieldkit_classifier_batch_texts", "Texts per classifier bank call",
                                          buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.classifier_cache = Counter("shieldkit_classifier_cache", "Score cache lookups per distinct text (result: "
                                        "hit, miss)", ["result"], registry=r)
        self.ready = Gauge("shieldkit_ready", "1 once models are loaded and the proxy serves", registry=r)

    def check_done(self, direction: str, outcome: CheckOutcome) -> None:
        self.check_results.labels(outcome.name, direction, outcome.outcome).inc()
        self.check_latency.labels(outcome.name, direction).observe(outcome.latency_ms / 1000)

    def scored_batch(self, texts: int) -> None:
        self.classifier_batch.observe(texts)

    def cache_lookups(self, hits: int, misses: int) -> None:
        if hits:
            self.classifier_cache.labels("hit").inc(hits)
        if misses:
            self.classifier_cache.labels("miss").inc(misses)

    def decided(self, verdict: Verdict) -> None:
        self.decisions.labels(verdict.direction, verdict.decision).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
