"""Read a policy file: YAML with line numbers -> validated dataclasses -> guards with built scanners."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from shieldkit.errors import ConfigError
from shieldkit.guardrails.checks import BuildContext, CheckConfig, CheckRegistry, builtin_registry
from shieldkit.guardrails.checks.holds import Holding
from shieldkit.guardrails.pipeline.engine import Check, Guard, Observer
from shieldkit.guardrails.policy.fields import FieldError, from_dict
from shieldkit.guardrails.policy.schema import PolicyFile
from shieldkit.guardrails.policy.yaml_lines import load_located

DEFAULT_POLICY_RESOURCE = "default.yaml"


@dataclass(frozen=True)
class LoadedPolicies:
    file: PolicyFile
    source: str  # file name, for messages
    base_dir: Path  # relative paths in the file (word lists, classifier folders) start here
    registry: CheckRegistry

    def classifier_checks(self) -> list[tuple[str, str, CheckConfig]]:
        """(policy, direction, config) of every classifier check."""
        return [(name, direction, check) for name, policy in self.file.policies.items()
                for direction in ("input", "output") for check in getattr(policy, direction) if check.kind == "classifier"]


def default_policy_path() -> Path:
    return Path(str(resources.files("shieldkit.guardrails.policy").joinpath(DEFAULT_POLICY_RESOURCE)))


def load_policy_file(path: str | Path | None = None, registry: CheckRegistry | None = None) -> LoadedPolicies:
    """Load and strictly validate a policy file (default: the packaged ``default.yaml``)."""
    path = Path(path).expanduser() if path is not None else default_policy_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"policy file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read policy file {path}: {exc}") from None
    return parse_policy_text(text, source=str(path), base_dir=path.parent, registry=registry)


def parse_policy_text(text: str, *, source: str = "<policy>", base_dir: Path | None = None,
                      registry: CheckRegistry | None = None) -> LoadedPolicies:
    registry = registry or builtin_registry()
    document = load_located(text, source)
    if document.data is None:
        raise ConfigError(f"{source}: the policy file is empty")

    def build_check(config_type: type, data: Mapping[str, Any]) -> CheckConfig:
        kind_name = data.get("kind")
        if kind_name is None:
            raise FieldError((), f"missing key 'kind' (one of {', '.join(registry.names)})")
        if kind_name not in registry:
            raise FieldError(("kind",), f"unknown check kind {kind_name!r}; known kinds: {', '.join(registry.names)}")
        kind = registry.get(kind_name)
        config = from_dict(kind.config, data)
        if config.action not in kind.actions:
            raise FieldError(("action",), f"a {kind.name} check can only {' or '.join(sorted(kind.actions))}, not {config.action}")
        if config.restore and config.action != "redact":
            raise FieldError(("restore",), "restore needs action: redact")
        if config.restore_roles != ("user",) and not config.restore:
            raise FieldError(("restore_roles",), "restore_roles needs restore: true")
        return config

    try:
        policy_file = from_dict(PolicyFile, document.data, {CheckConfig: build_check})
    except FieldError as exc:
        raise document.error(exc.path, exc.message) from None
    return LoadedPolicies(policy_file, source, (base_dir or Path.cwd()).resolve(), registry)


def build_guards(loaded: LoadedPolicies, context: BuildContext, *, timeout_s: float = 30.0,
                 observer: Observer | None = None) -> dict[str, dict[str, Guard]]:
    """{policy name: {"input": Guard, "output": Guard}}, every scanner built once."""
    guards: dict[str, dict[str, Guard]] = {}
    for name, policy in loaded.file.policies.items():
        guards[name] = {}
        for direction in ("input", "output"):
            checks = []
            for config in getattr(policy, direction):
                kind = loaded.registry.get(config.kind)
                try:
                    scanner = kind.build(config, replace(context, direction=direction))
                except ConfigError as exc:
                    raise ConfigError(f"{loaded.source}: policy '{name}', {direction} check '{config.name}': {exc}") from None
                if config.action == "redact" and not isinstance(scanner, Holding):
                    raise ConfigError(f"{loaded.source}: policy '{name}', {direction} check '{config.name}': a {config.kind} "
                                      "check cannot redact: its scanner does not say where streamed text may be cut")
                checks.append(Check(config, scanner, kind.reads))
            guards[name][direction] = Guard(direction, checks, timeout_s=timeout_s, observer=observer)
    return guards
