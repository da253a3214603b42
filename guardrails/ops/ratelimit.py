"""Rate limits on the ``limits`` library (https://limits.readthedocs.io): its moving-window strategy (at most N
requests in any window of the given length, e.g. any 60 seconds for ``N/minute``) over one of its async storages.

Two limits use it: each API key's ``rate_limit``, and failed-key attempts per client address (an address that sent
``auth_failure_limit`` invalid keys in a window gets 429 for every keyed request until the window frees up, so it
cannot go on testing keys). The storage is the setting ``rate_limit_storage``, a ``limits`` storage URI:
``memory://`` (the default) counts in this process only; ``redis://``, ``memcached://`` or ``mongodb://`` storages
are shared by every process that uses them (their client libraries are extras of ``limits``, e.g.
``pip install "limits[async-redis]"``).

A per-process storage with several workers would hand each worker the full limit, so
:func:`require_shared_storage` refuses that set-up at start instead of silently multiplying the limit. If the
storage fails at run time (Redis down), requests that need a limit get a 503 (fail closed), never a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import contextmanager
from urllib.parse import urlparse

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string

from shieldkit.errors import ConfigError
from shieldkit.guardrails.api.errors import RateLimitUnavailable
from shieldkit.guardrails.policy.schema import KeyConfig
from shieldkit.guardrails.settings import ProxySettings

log = logging.getLogger("shieldkit.guardrails")
NAMESPACE = "shieldkit"  # first part of every key this proxy writes to the storage
PER_PROCESS_SCHEMES = frozenset({"async+memory"})  # storages that live in one process's memory


def async_uri(uri: str) -> str:
    """``limits`` names its async storages ``async+<scheme>://``; the setting may leave the prefix out."""
    return uri if uri.startswith("async+") else f"async+{uri}"


def open_storage(uri: str) -> Storage:
    """The async ``limits`` storage for ``uri`` (``memory://``, ``redis://host:6379``, ...); ConfigError if unusable."""
    try:
        storage = storage_from_string(async_uri(uri), wrap_exceptions=True)
    except ConfigurationError as exc:  # unknown scheme, or the storage's client library is not installed
        raise ConfigError(f"rate_limit_storage {uri!r}: {exc}") from None
    if not isinstance(storage, Storage):
        raise ConfigError(f"rate_limit_storage {uri!r} is not an async storage of the limits library")
    return storage


def require_shared_storage(settings: ProxySettings, keys: Sequence[KeyConfig]) -> None:
    """Refuse several workers counting rate limits each in its own memory (each would allow the full limit)."""
    if settings.workers <= 1 or not keys:
        return
    limited = [key.id for key in keys if key.rate_limit]
    if not limited and settings.auth_failure_limit is None:
        return
    if urlparse(async_uri(settings.rate_limit_storage)).scheme not in PER_PROCESS_SCHEMES:
        return
    what = f"the rate limits of key(s) {', '.join(limited)}" if limited else "the failed-key limit"
    if limited and settings.auth_failure_limit is not None:
        what += " and the failed-key limit"
    raise ConfigError(
        f"{settings.workers} workers cannot share {what} in rate_limit_storage {settings.rate_limit_storage!r}: "
        "each worker would count on its own and allow the full limit. Give a storage all workers share "
        "(--rate-limit-storage / SHIELDKIT_PROXY_RATE_LIMIT_STORAGE=redis://host:6379, memcached://host:11211), "
        "or run one worker")


class RateLimits:
    """The proxy's limits over one storage. Every method returns 0 when the request may go on, else the seconds
    until it may be retried; a failing storage raises ``RateLimitUnavailable`` (503)."""

    def __init__(self, settings: ProxySettings, keys: Sequence[KeyConfig]) -> None:
        require_shared_storage(settings, keys)
        self.storage = open_storage(settings.rate_limit_storage)
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._keys: dict[str, RateLimitItem] = {key.id: parse(key.rate_limit) for key in keys if key.rate_limit}
        self._auth = parse(settings.auth_failure_limit) if settings.auth_failure_limit else None

    async def spend_key(self, key_id: str) -> float:
        """One request of the key's ``rate_limit``."""
        item = self._keys.get(key_id)
        return 0.0 if item is None else await self._spend(item, "key", key_id)

    async def auth_blocked(self, address: str) -> float:
        """Whether ``address`` has used up its failed-key attempts (checked before a key is looked at)."""
        if self._auth is None:
            return 0.0
        with _fail_closed():
            if await self._limiter.test(self._auth, NAMESPACE, "auth-failures", address):
                return 0.0
        return await self._wait(self._auth, "auth-failures", address)

    async def auth_failed(self, address: str) -> float:
        """Count one invalid key from ``address``."""
        return 0.0 if self._auth is None else await self._spend(self._auth, "auth-failures", address)

    async def _spend(self, item: RateLimitItem, *identifiers: str) -> float:
        with _fail_closed():
            if await self._limiter.hit(item, NAMESPACE, *identifiers):
                return 0.0
        return await self._wait(item, *identifiers)

    async def _wait(self, item: RateLimitItem, *identifiers: str) -> float:
        with _fail_closed():
            stats = await self._limiter.get_window_stats(item, NAMESPACE, *identifiers)
        return max(stats.reset_time - time.time(), 0.001)


@contextmanager
def _fail_closed():
    """Any failure of the storage (its clients' errors are not all ``StorageError``) is logged and becomes a 503."""
    try:
        yield
    except Exception as exc:
        log.error("the rate-limit storage failed: %s", exc, exc_info=exc)
        raise RateLimitUnavailable("the rate limiter's storage is unavailable, so requests that need a rate limit are "
                                   "refused until it is back", headers={"Retry-After": "5"}) from exc
