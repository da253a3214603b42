"""Scorer service settings: arguments of ``shieldkit serve-classifiers`` or ``SHIELDKIT_SCORER_*`` environment
variables (the Gemma runtime's own are ``SHIELDKIT_MODEL``, ``SHIELDKIT_DEVICE``, ...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shieldkit.model.settings import ModelSettings, build_settings


class ScorerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIELDKIT_SCORER_", extra="forbid", frozen=True)

    # The policy file whose classifier checks name the classifiers to load: the same file the proxies read.
    # None: the packaged default policy.
    policy: Path | None = None
    # The safety model folder the classifier heads read. None: the committed one (trained on the embedded Gemma).
    safety_model: Path | None = None
    # The Gemma runtime the classifiers run on: SHIELDKIT_MODEL, SHIELDKIT_DEVICE, ...
    model: ModelSettings = Field(default_factory=ModelSettings)
    # Bearer token the proxies must send (SHIELDKIT_PROXY_SCORER_API_KEY on their side). None: no token asked.
    api_key: SecretStr | None = None
    # The same scheduler as the proxy's in-process scorer, now across every proxy worker that calls this service:
    # how long to collect texts before the first batch; 0 because each call is already a proxy's batch (the
    # proxy waited its own window) and the calls that arrive while a pass runs join the next one anyway
    batch_window_ms: float = Field(0.0, ge=0, le=1000)
    batch_max_texts: int = Field(8, ge=1)  # most distinct texts per classifier pass
    # Most texts of one /v1/score call per pass while others wait (round-robin interleaves concurrent calls text by
    # text either way). None: batch_max_texts, since a call is already a proxy's batch and, alone, should fill a pass.
    batch_texts_per_request: int | None = Field(None, ge=1)
    queue_texts: int = Field(256, ge=1)  # texts waiting before new calls get 429 with Retry-After ...
    queue_wait: float = Field(10.0, gt=0)  # ... or seconds of estimated work waiting
    cache_size: int = Field(16384, ge=0)  # texts whose scores are kept (LRU, shared by every proxy); 0: off
    max_texts: int = Field(256, ge=1)  # most texts in one /v1/score call (more: 413)
    max_body_bytes: int = Field(4_000_000, ge=1024)  # larger request bodies: 413

    @model_validator(mode="after")
    def _share_fits_batch(self) -> ScorerSettings:
        if self.batch_texts_per_request is not None and self.batch_texts_per_request > self.batch_max_texts:
            raise ValueError(f"batch_texts_per_request ({self.batch_texts_per_request}) must not pass batch_max_texts "
                             f"({self.batch_max_texts})")
        return self

    @property
    def resolved_texts_per_request(self) -> int:
        return self.batch_texts_per_request if self.batch_texts_per_request is not None else self.batch_max_texts

    @classmethod
    def create(cls, **values: object) -> ScorerSettings:
        """Build settings, turning validation failures into one ConfigError naming each bad field."""
        return build_settings(cls, values, prefix="SHIELDKIT_SCORER_")
