"""Rate limits on the ``limits`` library (https://limits.readthedocs.io): its moving-window strategy (at most N
requests in any window of the given length, e.g. any 60 seconds for ``N/minute``) over one of its async storages.

Two limits use it: each API key's ``rate_limit``, and failed-key attempts per client address (an address that sent
``auth_failure_limit`` invalid keys in a window gets 429 for every keyed request until the window frees up, so it
cannot go on testing keys). The storage is ``redis_url`` when given, else ``rate_limit_storage``, a ``limits``
storage URI: ``memory://`` (the default) counts in this process only; ``redis://`` (its async client, coredis, comes
with the proxy), ``memcached://`` or ``mongodb://`` storages are shared by every process that uses them (the last
two need their ``limits`` extra, e.g. ``pip install "limits[async-memcached]"``).

A per-process storage with several workers would hand each worker the full limit, so
:func:`require_shared_storage` refuses that set-up at start instead of silently multiplying the limit. A storage
call that fails or takes longer than ``rate_limit_timeout`` (Redis down) is the documented choice
``rate_limit_fail_open``: false (the default) refuses the requests that need a limit with a 503
``rate_limit_unavailable`` (fail closed); true lets them through unlimited. Either way it is never a 500, each
outage is logged once (and its end), and every failed call counts in ``shieldkit_rate_limit_storage_errors``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Protocol, TypeVar
from urllib.parse import urlparse

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string

from shieldkit.errors import ConfigError
from shieldkit.guardrails.api.errors import RateLimitUnavailable
from shieldkit.guardrails.policy.schema import KeyConfig
from shieldkit.guardrails.settings import ProxySettings, redacted_url

log = logging.getLogger("shieldkit.guardrails")
NAMESPACE = "shieldkit"  # first part of every key this proxy writes to the storage
PER_PROCESS_SCHEMES = frozenset({"async+memory"})  # storages that live in one process's memory
T = TypeVar("T")


class StorageObserver(Protocol):
    def rate_limit_storage_failed(self, allowed: bool) -> None: ...


def async_uri(uri: str) -> str:
    """``limits`` names its async storages ``async+<scheme>://``; the setting may leave the prefix out."""
    return uri if uri.startswith("async+") else f"async+{uri}"


def open_storage(uri: str, setting: str = "rate_limit_storage") -> Storage:
    """The async ``limits`` storage for ``uri`` (``memory://``, ``redis://host:6379``, ...); ConfigError if unusable.
    Nothing connects yet: clients connect on their first call."""
    try:
        storage = storage_from_string(async_uri(uri), wrap_exceptions=True)
    except ConfigurationError as exc:  # unknown scheme, or the storage's client library is not installed
        raise ConfigError(f"{setting} {redacted_url(uri)!r}: {exc}") from None
    if not isinstance(storage, Storage):
        raise ConfigError(f"{setting} {redacted_url(uri)!r} is not an async storage of the limits library")
    return storage


def require_shared_storage(settings: ProxySettings, keys: Sequence[KeyConfig]) -> None:
    """Refuse several workers counting rate limits each in its own memory (each would allow the full limit)."""
    if settings.workers <= 1 or not keys:
        return
    limited = [key.id for key in keys if key.rate_limit]
    if not limited and settings.auth_failure_limit is None:
        return
    if urlparse(async_uri(settings.resolved_rate_limit_storage)).scheme not in PER_PROCESS_SCHEMES:
        return
    what = f"the rate limits of key(s) {', '.join(limited)}" if limited else "the failed-key limit"
    if limited and settings.auth_failure_limit is not None:
        what += " and the failed-key limit"
    raise ConfigError(
        f"{settings.workers} workers cannot share {what} in rate_limit_storage {settings.rate_limit_storage!r}: "
        "each worker would count on its own and allow the full limit. Give a storage all workers share "
        "(--redis-url / SHIELDKIT_PROXY_REDIS_URL=redis://host:6379, or --rate-limit-storage "
        "memcached://host:11211), or run one worker")


class RateLimits:
    """The proxy's limits over one storage. Every method returns 0 when the request may go on, else the seconds
    until it may be retried; a failing storage raises ``RateLimitUnavailable`` (503) unless it fails open."""

    def __init__(self, settings: ProxySettings, keys: Sequence[KeyConfig],
                 observer: StorageObserver | None = None) -> None:
        require_shared_storage(settings, keys)
        setting = "redis_url" if settings.redis_url else "rate_limit_storage"
        self.uri = redacted_url(settings.resolved_rate_limit_storage)
        self.storage = open_storage(settings.resolved_rate_limit_storage, setting)
        self.fail_open = settings.rate_limit_fail_open
        self.timeout = settings.rate_limit_timeout
        self.observer = observer
        self.down = False  # the last storage call failed (an outage is logged when it starts and when it ends)
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._keys: dict[str, RateLimitItem] = {key.id: parse(key.rate_limit) for key in keys if key.rate_limit}
        self._auth = parse(settings.auth_failure_limit) if settings.auth_failure_limit else None

    @property
    def needed(self) -> bool:
        return bool(self._keys) or self._auth is not None

    async def probe(self) -> None:
        """At start: warn at once when a storage the limits need cannot be reached (requests would fail on it)."""
        if not self.needed:
            return
        try:
            reachable = await asyncio.wait_for(self.storage.check(), self.timeout)
        except Exception as exc:  # reported below; every request that needs the storage meets it too
            reachable, reason = False, str(exc) or type(exc).__name__
        else:
            reason = "it does not answer"
        if not reachable:
            log.warning("the rate-limit storage %s cannot be reached (%s): requests that need a rate limit are %s "
                        "until it answers", self.uri, reason, self._handling)

    async def spend_key(self, key_id: str) -> float:
        """One request of the key's ``rate_limit``."""
        item = self._keys.get(key_id)
        return 0.0 if item is None else await self._spend(item, "key", key_id)

    async def auth_blocked(self, address: str) -> float:
        """Whether ``address`` has used up its failed-key attempts (checked before a key is looked at)."""
        if self._auth is None:
            return 0.0
        allowed = await self._call(self._limiter.test(self._auth, NAMESPACE, "auth-failures", address))
        if allowed is None or allowed:
            return 0.0
        return await self._wait(self._auth, "auth-failures", address)

    async def auth_failed(self, address: str) -> float:
        """Count one invalid key from ``address``."""
        return 0.0 if self._auth is None else await self._spend(self._auth, "auth-failures", address)

    async def _spend(self, item: RateLimitItem, *identifiers: str) -> float:
        allowed = await self._call(self._limiter.hit(item, NAMESPACE, *identifiers))
        if allowed is None or allowed:
            return 0.0
        return await self._wait(item, *identifiers)

    async def _wait(self, item: RateLimitItem, *identifiers: str) -> float:
        stats = await self._call(self._limiter.get_window_stats(item, NAMESPACE, *identifiers))
        if stats is None:  # failing open: the limit was reached just before the storage failed; let it go
            return 0.0
        return max(stats.reset_time - time.time(), 0.001)

    @property
    def _handling(self) -> str:
        return "let through unlimited (rate_limit_fail_open)" if self.fail_open else "refused with 503 (fail closed)"

    async def _call(self, call: Awaitable[T]) -> T | None:
        """The storage call's result; on a failure or timeout None when failing open, else ``RateLimitUnavailable``.
        (The storages' clients raise more than ``StorageError``, so any exception counts as the storage failing.)"""
        try:
            result = await asyncio.wait_for(call, self.timeout)
        except Exception as exc:
            if not self.down:
                self.down = True
                log.error("the rate-limit storage %s failed (%s): requests that need a rate limit are %s until it "
                          "answers again", self.uri, str(exc) or type(exc).__name__, self._handling, exc_info=exc)
            if self.observer is not None:
                self.observer.rate_limit_storage_failed(allowed=self.fail_open)
            if self.fail_open:
                return None
            raise RateLimitUnavailable("the rate limiter's storage is unavailable, so requests that need a rate limit "
                                       "are refused until it is back", headers={"Retry-After": "5"}) from exc
        if self.down:
            self.down = False
            log.warning("the rate-limit storage %s answers again", self.uri)
        return result
