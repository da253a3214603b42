"""What a policy file may say. Each dataclass validates itself; the loader adds file names and line numbers."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from shieldkit.guardrails.checks.base import CheckConfig
from shieldkit.guardrails.policy.fields import FieldError, require, validate_fields

Scope = Literal["chat", "moderations", "check"]
RATE_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True, kw_only=True)
class StreamConfig:
    window: Literal["sentence", "tokens"] = "sentence"  # release streamed text at sentence ends, or every `tokens` tokens
    tokens: int = 32  # window size in tokens ("tokens"); the most text held before a forced release ("sentence")
    first_tokens: int = 4  # the first window: released after this many tokens (at most `tokens`), so the answer starts at once; 0 = like the others
    context_chars: int = 200  # already-released text checked again with each new window, so checks see across cuts
    hold_chars: int = 8192  # the most text held back while no cut is safe (a secret still arriving); then refuse the rest

    def __post_init__(self) -> None:
        validate_fields(self)
        require(1 <= self.tokens <= 4096, "tokens", f"must be between 1 and 4096, got {self.tokens}")
        require(0 <= self.first_tokens <= 4096, "first_tokens", f"must be between 0 and 4096, got {self.first_tokens}")
        require(0 <= self.context_chars <= 10_000, "context_chars", f"must be between 0 and 10000, got {self.context_chars}")
        require(256 <= self.hold_chars <= 1_000_000, "hold_chars",
                f"must be between 256 and 1000000, got {self.hold_chars}")


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    keep_text: bool = False  # store the checked texts (after redaction) in the audit log, not just scores

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True, kw_only=True)
class Policy:
    description: str = ""  # for people reading the file
    refusal: str = "Sorry, I can't help with that."  # replaces withheld output (finish_reason: content_filter)
    input: tuple[CheckConfig, ...] = ()  # checks on the request's messages, in order
    output: tuple[CheckConfig, ...] = ()  # checks on the model's answer, in order
    stream: StreamConfig = field(default_factory=StreamConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)

    def __post_init__(self) -> None:
        validate_fields(self)
        require(bool(self.refusal.strip()), "refusal", "must not be empty")
        for direction in ("input", "output"):
            seen: dict[str, int] = {}
            for index, check in enumerate(getattr(self, direction)):
                if check.name in seen:
                    raise FieldError((direction, index, "name"),
                                     f"duplicate check name '{check.name}' (also {direction}[{seen[check.name]}])")
                seen[check.name] = index
                if direction == "output" and check.restore:
                    raise FieldError((direction, index, "restore"), "restore applies to input checks only")
                if direction == "output" and check.roles:
                    raise FieldError((direction, index, "roles"), "roles applies to input checks only")


@dataclass(frozen=True, kw_only=True)
class KeyConfig:
    id: str  # a name for the key, shown in the audit log and metrics (never the key itself)
    sha256: str  # hex sha256 of the key (`shieldkit key new` prints a key and its hash)
    policy: str  # the policy the key's requests are checked against
    rate_limit: str | None = None  # e.g. "60/minute": at most 60 requests in any 60 s (all workers); none = unlimited
    scopes: tuple[Scope, ...] = ("chat", "moderations", "check")  # endpoints the key may call
    models: tuple[str, ...] = ()  # model names the key may call; empty = any

    def __post_init__(self) -> None:
        validate_fields(self)
        require(bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", self.id)), "id",
                f"must be letters, digits, '_', '.', '-' (at most 64), got {self.id!r}")
        require(bool(re.fullmatch(r"[0-9a-f]{64}", self.sha256)), "sha256",
                "must be 64 lowercase hex characters (the sha256 of the key, not the key itself)")
        if self.rate_limit is not None:
            require(parse_rate(self.rate_limit) is not None, "rate_limit",
                    f"must look like '60/minute' (per second, minute, hour or day), got {self.rate_limit!r}")

    @property
    def rate(self) -> tuple[int, float] | None:
        return parse_rate(self.rate_limit) if self.rate_limit else None


def hash_key(key: str) -> str:
    """What a key entry's ``sha256`` holds for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_rate(text: str) -> tuple[int, float] | None:
    """'60/minute' -> (60, 60.0): that many requests per that many seconds."""
    match = RATE_PATTERN.match(text)
    if not match or int(match.group(1)) < 1:
        return None
    return int(match.group(1)), RATE_UNITS[match.group(2)]


@dataclass(frozen=True, kw_only=True)
class PolicyFile:
    version: Literal[1] = 1  # format version of this file
    policies: dict[str, Policy]  # policy name -> policy
    default_policy: str | None = None  # the policy for requests when no keys are configured (default: the only one)
    keys: tuple[KeyConfig, ...] = ()  # API keys; when present, every request needs one

    def __post_init__(self) -> None:
        validate_fields(self)
        require(bool(self.policies), "policies", "must define at least one policy")
        for name in self.policies:
            if not re.fullmatch(r"[a-z][a-z0-9_\-]{0,63}", name):
                raise FieldError(("policies", name), "policy names must be lowercase letters, digits, '_' or '-'")
        if self.default_policy is not None:
            require(self.default_policy in self.policies, "default_policy",
                    f"names no policy in this file ({', '.join(self.policies)})")
        elif len(self.policies) > 1 and not self.keys:
            raise FieldError("default_policy", "several policies and no keys: say which policy requests use")
        seen_ids, seen_hashes = set(), set()
        for index, key in enumerate(self.keys):
            if key.policy not in self.policies:
                raise FieldError(("keys", index, "policy"), f"unknown policy '{key.policy}'; defined: {', '.join(self.policies)}")
            if key.id in seen_ids:
                raise FieldError(("keys", index, "id"), f"duplicate key id '{key.id}'")
            if key.sha256 in seen_hashes:
                raise FieldError(("keys", index, "sha256"), "the same key hash is listed twice")
            seen_ids.add(key.id)
            seen_hashes.add(key.sha256)

    @property
    def open_policy(self) -> str:
        """The policy used when no keys are configured."""
        return self.default_policy or next(iter(self.policies))
