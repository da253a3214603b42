"""Proxy settings: arguments of ``shieldkit serve`` or ``SHIELDKIT_PROXY_*`` environment variables."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shieldkit.guardrails.policy.schema import parse_rate
from shieldkit.model.settings import ModelSettings, build_settings

REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://", "redis+sentinel://", "redis+cluster://")
AUDIT_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://", "sqlite:///")


def redacted_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***`` (for messages and logs)."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)


def default_audit_path() -> Path:
    """``$XDG_STATE_HOME/shieldkit/audit.sqlite3`` (``~/.local/state/shieldkit/audit.sqlite3``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "shieldkit" / "audit.sqlite3"


class ProxySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIELDKIT_PROXY_", extra="forbid", frozen=True)

    # Policy file (YAML). None: the packaged default policy.
    policy: Path | None = None
    # An OpenAI-compatible base URL such as http://vllm:8000/v1. None: the embedded Gemma, in-process.
    upstream: str | None = None
    # Bearer token the proxy sends upstream (the client's own key is never forwarded).
    upstream_api_key: SecretStr | None = None
    upstream_connect_timeout: float = Field(5.0, gt=0)  # seconds to connect before 504
    upstream_timeout: float = Field(120.0, gt=0)  # seconds without a byte from the upstream before 504
    upstream_max_connections: int = Field(64, ge=1)  # pooled connections to the upstream
    # The gemma model id in /v1/models and the only `model` it accepts. None: derived from the model.
    served_model: str | None = None
    # The Gemma runtime (used for the embedded upstream and for classifier checks): SHIELDKIT_MODEL, ...
    model: ModelSettings = Field(default_factory=ModelSettings)
    max_body_bytes: int = Field(1_000_000, ge=1024)  # larger request bodies get 413
    max_messages: int = Field(256, ge=1)  # more messages get 413
    default_max_tokens: int = Field(256, ge=1)  # embedded Gemma: tokens generated when the request gives none
    max_tokens_limit: int = Field(2048, ge=1)  # embedded Gemma: the most a request may ask for
    default_temperature: float = Field(0.7, ge=0, le=2)  # embedded Gemma: when the request gives none
    generation_workers: int = Field(4, ge=1)  # embedded Gemma: generations at once (they interleave per token)
    batch_window_ms: float = Field(3.0, ge=0, le=1000)  # classifier micro-batching: how long to collect texts
    batch_max_texts: int = Field(8, ge=1)  # most distinct texts per classifier pass (batches fill under many requests)
    # Most texts one request puts into a batch while others wait (round-robin): 1 is the fairest (a single check
    # waits for one text of a big request, not a batch of them); more lets a big request alone finish in fewer passes.
    batch_texts_per_request: int = Field(1, ge=1)
    # Admission control: texts a new request would wait for (round-robin) before it gets 429 with Retry-After ...
    classifier_queue_texts: int = Field(128, ge=1)
    # ... or seconds of that work (those texts times the measured time per text). None: a third of check_timeout
    classifier_queue_wait: float | None = Field(None, gt=0)
    classifier_cache_size: int = Field(4096, ge=0)  # texts whose classifier scores are kept (LRU); 0 turns the cache off
    check_timeout: float = Field(30.0, gt=0)  # seconds before a check counts as failed (its on_error applies)
    audit: bool = True  # write the audit log
    audit_path: Path | None = None  # the SQLite file. None: $XDG_STATE_HOME/shieldkit/audit.sqlite3
    # A database every worker and machine shares, postgresql://user:password@host:5432/db (psycopg 3), instead of
    # the SQLite file; sqlite:////path/to/file also works. None: the SQLite file of audit_path.
    audit_url: str | None = None
    # Where rate limits (keys' rate_limit, failed-key attempts) are counted, as a `limits` storage URI: memory://
    # (this process only), or a storage every worker shares: redis://host:6379, memcached://host:11211, ...
    rate_limit_storage: str = "memory://"
    # A Redis every worker and machine shares for the rate limits: redis://[:password@]host:6379[/db], rediss://
    # (TLS), redis+unix:///path, redis+sentinel://host:26379/service, redis+cluster://host:7000. Same as giving it
    # as rate_limit_storage.
    redis_url: str | None = None
    # When the rate-limit storage fails (Redis unreachable): false answers 503 rate_limit_unavailable to requests
    # that need a limit (fail closed); true lets them through unlimited, logged and counted in /metrics (fail open).
    rate_limit_fail_open: bool = False
    rate_limit_timeout: float = Field(1.0, gt=0, le=60)  # seconds a storage call may take before it counts as failed
    # With keys configured: invalid keys accepted from one client address per window before 429. None: no limit.
    auth_failure_limit: str | None = "10/minute"
    # With keys configured, /metrics, /docs, /redoc and /openapi.json need a valid key too; true opens them.
    public_docs_and_metrics: bool = False
    # Processes serving this app (`shieldkit serve --workers` sets it); more than one needs a shared rate-limit storage.
    workers: int = Field(1, ge=1)
    # --- the classifier scorer as a service (`shieldkit serve-classifiers`) ---
    # Its base URL, e.g. http://shieldkit-scorer:8001. None: the classifiers run in this process.
    scorer_url: str | None = None
    scorer_api_key: SecretStr | None = None  # bearer token it asks for (its SHIELDKIT_SCORER_API_KEY)
    scorer_connect_timeout: float = Field(2.0, gt=0)  # seconds to connect before the batch's checks fail
    # Seconds to wait for its answer before the batch's checks fail (their on_error applies). None: 2/3 of check_timeout
    scorer_timeout: float | None = Field(None, gt=0)
    scorer_retries: int = Field(2, ge=0, le=10)  # failed connection attempts retried (a sent request never is)

    @field_validator("upstream")
    @classmethod
    def _upstream_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL such as http://localhost:8000/v1, got {value!r}")
        return value

    @field_validator("scorer_url")
    @classmethod
    def _scorer_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL such as http://shieldkit-scorer:8001, got {value!r}")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage_uri(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"must be a storage URI such as memory:// or redis://localhost:6379, got {value!r}")
        return value.strip()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(REDIS_SCHEMES):
            raise ValueError(f"must be a Redis URL such as redis://localhost:6379/0 (schemes: "
                             f"{', '.join(REDIS_SCHEMES)}), got {redacted_url(value)!r}")
        return value

    @field_validator("audit_url")
    @classmethod
    def _audit_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(AUDIT_SCHEMES):
            raise ValueError(f"must be a database URL such as postgresql://user:password@host:5432/shieldkit or "
                             f"sqlite:////var/lib/shieldkit/audit.sqlite3, got {redacted_url(value)!r}")
        return value

    @field_validator("auth_failure_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "none", "off"):
            return None
        if parse_rate(value) is None:
            raise ValueError(f"must look like '10/minute' (per second, minute, hour or day) or 'off', got {value!r}")
        return value.strip()

    @model_validator(mode="after")
    def _one_storage(self) -> ProxySettings:
        if self.redis_url and self.rate_limit_storage not in ("memory://", self.redis_url):
            raise ValueError(f"give the rate-limit storage once: redis_url ({redacted_url(self.redis_url)}) or "
                             f"rate_limit_storage ({redacted_url(self.rate_limit_storage)}), not both")
        if self.audit_url and self.audit_path:
            raise ValueError(f"give the audit log once: audit_url ({redacted_url(self.audit_url)}) or audit_path "
                             f"({self.audit_path}), not both")
        return self

    @model_validator(mode="after")
    def _queue_wait_below_timeout(self) -> ProxySettings:
        if self.classifier_queue_wait is not None and self.classifier_queue_wait >= self.check_timeout:
            raise ValueError(f"classifier_queue_wait ({self.classifier_queue_wait:g} s) must be below check_timeout "
                             f"({self.check_timeout:g} s), or queued checks time out instead of getting 429")
        return self

    @model_validator(mode="after")
    def _default_tokens_within_limit(self) -> ProxySettings:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(f"default_max_tokens ({self.default_max_tokens}) must be at most max_tokens_limit "
                             f"({self.max_tokens_limit}), or every request that names no max_tokens is refused")
        return self

    @model_validator(mode="after")
    def _scorer_timeout_below_check_timeout(self) -> ProxySettings:
        if self.scorer_timeout is not None and self.scorer_timeout >= self.check_timeout:
            raise ValueError(f"scorer_timeout ({self.scorer_timeout:g} s) must be below check_timeout "
                             f"({self.check_timeout:g} s), or checks time out before the scorer service's answer")
        return self

    @property
    def resolved_scorer_timeout(self) -> float:
        return self.scorer_timeout if self.scorer_timeout is not None else self.check_timeout * 2 / 3

    @property
    def resolved_queue_wait(self) -> float:
        return self.classifier_queue_wait if self.classifier_queue_wait is not None else self.check_timeout / 3

    @property
    def resolved_audit_path(self) -> Path:
        return Path(self.audit_path).expanduser() if self.audit_path else default_audit_path()

    @property
    def audit_target(self) -> str | Path:
        """Where the audit log is written: the database URL, else the SQLite file."""
        return self.audit_url or self.resolved_audit_path

    @property
    def resolved_rate_limit_storage(self) -> str:
        """The ``limits`` storage URI the rate limits use: ``redis_url`` when given, else ``rate_limit_storage``."""
        return self.redis_url or self.rate_limit_storage

    @classmethod
    def create(cls, **values: object) -> ProxySettings:
        """Build settings, turning validation failures into one ConfigError naming each bad field."""
        return build_settings(cls, values, prefix="SHIELDKIT_PROXY_")
