"""Check kinds. Each is one file with its config, its scanner and a ``KIND``; they are registered here, explicitly."""

from __future__ import annotations

from shieldkit.guardrails.checks import classifier, pii, regex, words
from shieldkit.guardrails.checks.base import (
    BuildContext,
    CheckConfig,
    CheckKind,
    Finding,
    ScanResult,
    Scanner,
)
from shieldkit.guardrails.checks.registry import CheckRegistry

BUILTIN_KINDS = (regex.KIND, words.KIND, pii.KIND, classifier.KIND)


def builtin_registry() -> CheckRegistry:
    """A fresh registry of the built-in kinds; extend it with ``.register(CheckKind(...))``."""
    return CheckRegistry(BUILTIN_KINDS)


__all__ = ["BUILTIN_KINDS", "BuildContext", "CheckConfig", "CheckKind", "CheckRegistry", "Finding", "ScanResult",
           "Scanner", "builtin_registry"]
