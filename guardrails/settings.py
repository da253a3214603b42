"""Proxy settings: arguments of ``shieldkit serve`` or ``SHIELDKIT_PROXY_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shieldkit.guardrails.policy.schema import parse_rate
from shieldkit.model.settings import ModelSettings, build_settings


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
    # Admission control: texts waiting for the classifiers before new requests get 429 with Retry-After ...
    classifier_queue_texts: int = Field(128, ge=1)
    # ... or seconds of work waiting (texts waiting times the measured time per text). None: a third of check_timeout
    classifier_queue_wait: float | None = Field(None, gt=0)
    classifier_cache_size: int = Field(4096, ge=0)  # texts whose classifier scores are kept (LRU); 0 turns the cache off
    check_timeout: float = Field(30.0, gt=0)  # seconds before a check counts as failed (its on_error applies)
    audit: bool = True  # write the audit log
    audit_path: Path | None = None  # None: $XDG_STATE_HOME/shieldkit/audit.sqlite3
    # Where rate limits (keys' rate_limit, failed-key attempts) are counted, as a `limits` storage URI: memory://
    # (this process only), or a storage every worker shares: redis://host:6379, memcached://host:11211, ...
    rate_limit_storage: str = "memory://"
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

    @field_validator("auth_failure_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "none", "off"):
            return None
        if parse_rate(value) is None:
            raise ValueError(f"must look like '10/minute' (per second, minute, hour or day) or 'off', got {value!r}")
        return value.strip()

    @model_validator(mode="after")
    def _queue_wait_below_timeout(self) -> ProxySettings:
        if self.classifier_queue_wait is not None and self.classifier_queue_wait >= self.check_timeout:
            raise ValueError(f"classifier_queue_wait ({self.classifier_queue_wait:g} s) must be below check_timeout "
                             f"({self.check_timeout:g} s), or queued checks time out instead of getting 429")
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

    @classmethod
    def create(cls, **values: object) -> ProxySettings:
        """Build settings, turning validation failures into one ConfigError naming each bad field."""
        return build_settings(cls, values, prefix="SHIELDKIT_PROXY_")
