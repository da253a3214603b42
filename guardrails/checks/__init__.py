"""Check kinds. Each is one file with its config, its scanner and a ``KIND``; they are registered explicitly in
:func:`builtin_registry`."""

from __future__ import annotations

from shieldkit.guardrails.checks.base import (
    BuildContext,
    CheckConfig,
    CheckKind,
    CheckUnavailable,
    Finding,
    Scanner,
    ScanResult,
)
from shieldkit.guardrails.checks.registry import CheckRegistry


def builtin_registry() -> CheckRegistry:
    """A fresh registry of the built-in kinds; extend it with ``.register(CheckKind(...))``."""
    from shieldkit.guardrails.checks import classifier, disguise, pii, regex, words

    return CheckRegistry((regex.KIND, words.KIND, pii.KIND, classifier.KIND, disguise.KIND))


__all__ = ["BuildContext", "CheckConfig", "CheckKind", "CheckRegistry", "CheckUnavailable", "Finding", "ScanResult",
           "Scanner", "builtin_registry"]
