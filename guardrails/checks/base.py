"""The scanner contract: one method, one result type.

A check kind contributes three things, each in its own file (``regex.py``, ``words.py``, ``pii.py``,
``classifier.py``, ``disguise.py``): a config dataclass (what the policy YAML may say), a scanner (``async scan(texts)``) and a
:class:`CheckKind` that ties them together and is registered explicitly in ``checks/__init__.py``. A scanner of a
kind that may redact also says where a stream's held-back text may be cut (``hold``, see ``holds.py``).
What to do with a result (block, redact, flag; what happens on an error) is the engine's job, not the scanner's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from shieldkit.guardrails.policy.fields import require, validate_fields

if TYPE_CHECKING:
    from shieldkit.guardrails.scoring import Scorer

Action = Literal["block", "redact", "flag"]
OnError = Literal["block", "allow"]
Role = Literal["system", "developer", "user", "assistant"]
# What a kind's scanner is given: the normalised views, the texts as sent, or both (see guardrails/pipeline/reading.py).
Reads = Literal["normalised", "original", "both"]
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")


class CheckUnavailable(RuntimeError):
    """The check cannot run at all (known at start-up, so reported quietly per request)."""


class ServiceDown(CheckUnavailable):
    """The service that runs the checks cannot be reached (refused, timed out): every check waiting for it would
    fail the same way, so they fail at once instead of one batch after another."""


class Overloaded(Exception):
    """The check cannot be admitted now (its queue is full): the whole request is refused with 429 and
    ``Retry-After``, whatever the check's ``on_error`` (the engine lets it through, the app answers it)."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Finding:
    """A located match, for redaction and for reporting (never the matched text itself)."""

    start: int  # character offsets into the scanned text, end exclusive
    end: int
    label: str  # placeholder type, e.g. EMAIL, CREDIT_CARD


@dataclass(frozen=True)
class ScanResult:
    score: float  # violation probability for model checks; 1.0 / 0.0 (matched / not) for rule checks
    fired: bool  # score crossed the check's threshold, or a rule matched
    findings: tuple[Finding, ...] = ()  # where it matched (rule checks); empty for model checks
    threshold: float | None = None  # the threshold the score was compared with (model checks)


class Scanner(Protocol):
    async def scan(self, texts: Sequence[str]) -> list[ScanResult]:
        """One result per text. Raise on failure: the engine applies the check's ``on_error``."""


@dataclass(frozen=True, kw_only=True)
class CheckConfig:
    """Fields every check has. Kinds subclass this with their own fields (each with a comment)."""

    name: str  # unique within its direction; reported to the client when this check blocks
    kind: str  # which registered check kind runs it
    action: Action = "block"  # block: refuse; redact: replace matches with typed placeholders; flag: log only
    on_error: OnError = "block"  # what a failing (or unavailable) check means: block the text, or let it through
    restore: bool = False  # redact only: put the originals back into the response (input checks)
    restore_roles: tuple[Role, ...] = ("user",)  # with restore: only values found in messages of these roles
    roles: tuple[Role, ...] = ()  # input checks: only messages with these roles (default: every message)

    def __post_init__(self) -> None:
        validate_fields(self)
        require(bool(NAME_PATTERN.match(self.name)), "name",
                f"must be lowercase letters, digits, '_' or '-' (starting with a letter), got {self.name!r}")
        require(bool(self.restore_roles), "restore_roles", "must list at least one role (or set restore: false)")


@dataclass(frozen=True)
class BuildContext:
    """What scanners may need when they are built: the policy file's folder, the shared classifier scorer and the
    direction the check runs in."""

    base_dir: Path
    scorer: Scorer | None = None
    direction: Literal["input", "output"] = "input"


@dataclass(frozen=True)
class CheckKind:
    name: str  # the `kind:` value in a policy
    config: type[CheckConfig]
    build: Callable[[CheckConfig, BuildContext], Scanner]
    actions: frozenset[str] = field(default_factory=lambda: frozenset({"block", "redact", "flag"}))
    summary: str = ""  # one line for error messages and docs
    reads: Reads = "both"  # rule checks read both; model checks the views only; disguise detectors the originals
