"""The guardrail policy: the YAML rule set (ordered input/output checks, refusal text, streaming windows, audit,
API keys), its strict field validation and the packaged ``default.yaml``.

Names are imported lazily: check kinds validate their own fields with ``policy.fields`` while the loader imports
the check kinds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldkit.lazy import lazy_exports

_EXPORTS = {
    "LoadedPolicies": "shieldkit.guardrails.policy.loader",
    "build_guards": "shieldkit.guardrails.policy.loader",
    "default_policy_path": "shieldkit.guardrails.policy.loader",
    "load_policy_file": "shieldkit.guardrails.policy.loader",
    "parse_policy_text": "shieldkit.guardrails.policy.loader",
    "AuditConfig": "shieldkit.guardrails.policy.schema",
    "KeyConfig": "shieldkit.guardrails.policy.schema",
    "Policy": "shieldkit.guardrails.policy.schema",
    "PolicyFile": "shieldkit.guardrails.policy.schema",
    "StreamConfig": "shieldkit.guardrails.policy.schema",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from shieldkit.guardrails.policy.loader import (
        LoadedPolicies,
        build_guards,
        default_policy_path,
        load_policy_file,
        parse_policy_text,
    )
    from shieldkit.guardrails.policy.schema import AuditConfig, KeyConfig, Policy, PolicyFile, StreamConfig

__getattr__ = lazy_exports(__name__, _EXPORTS)
