"""Policy files: ordered input/output checks, refusal text, streaming windows, audit, API keys."""

from shieldkit.guardrails.policy.loader import (
    LoadedPolicies,
    build_guards,
    default_policy_path,
    load_policy_file,
    parse_policy_text,
)
from shieldkit.guardrails.policy.schema import AuditConfig, KeyConfig, Policy, PolicyFile, StreamConfig

__all__ = ["AuditConfig", "KeyConfig", "LoadedPolicies", "Policy", "PolicyFile", "StreamConfig", "build_guards",
           "default_policy_path", "load_policy_file", "parse_policy_text"]
