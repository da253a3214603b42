"""Per-key token buckets (in-process: with several workers, each enforces the limit on its own share)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, clock=time.monotonic) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._clock = clock

    def take(self, key_id: str, requests: int, per_seconds: float) -> float:
        """Spend one request of ``key_id``'s budget; returns 0 if allowed, else the seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(float(requests), now)
        rate = requests / per_seconds
        bucket.tokens = min(float(requests), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
