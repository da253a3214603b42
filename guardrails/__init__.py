"""The guardrail proxy: an OpenAI-compatible service that checks inputs and outputs against a policy.

    from shieldkit.guardrails import ProxySettings, create_app
    app = create_app(ProxySettings.create(policy="policy.yaml", upstream="http://localhost:8000/v1"))

Names are imported lazily; nothing is built at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldkit.lazy import lazy_exports

_EXPORTS = {
    "create_app": "shieldkit.guardrails.app",
    "ProxySettings": "shieldkit.guardrails.settings",
    "load_policy_file": "shieldkit.guardrails.policy",
    "parse_policy_text": "shieldkit.guardrails.policy",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from shieldkit.guardrails.app import create_app
    from shieldkit.guardrails.policy import load_policy_file, parse_policy_text
    from shieldkit.guardrails.settings import ProxySettings


__getattr__ = lazy_exports(__name__, _EXPORTS)
