"""An explicit registry of saliency methods: names map to method classes, built from their config dataclass."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from shieldkit.debugger.base import SaliencyMethod
from shieldkit.errors import ConfigError


class MethodClass(Protocol):
    name: str
    label: str
    description: str  # one sentence for people choosing a method
    signed: bool
    config_class: type

    def __call__(self, config: Any) -> SaliencyMethod: ...


class MethodRegistry:
    """Registration refuses duplicates; lookups of an unknown name list the known ones."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodClass] = {}

    def register(self, method: MethodClass) -> MethodClass:
        if method.name in self._methods:
            raise ConfigError(f"saliency method {method.name!r} is already registered")
        if not dataclasses.is_dataclass(method.config_class):
            raise ConfigError(f"saliency method {method.name!r}: config_class must be a dataclass")
        self._methods[method.name] = method
        return method

    def names(self) -> tuple[str, ...]:
        return tuple(self._methods)

    def get(self, name: str) -> MethodClass:
        if name not in self._methods:
            raise ConfigError(f"unknown saliency method {name!r}; known: {', '.join(self._methods) or '(none)'}")
        return self._methods[name]

    def create(self, name: str, **options: Any) -> SaliencyMethod:
        """Build a method from its options (fields of its config dataclass; unknown ones are refused)."""
        method = self.get(name)
        fields = [f.name for f in dataclasses.fields(method.config_class)]
        unknown = sorted(set(options) - set(fields))
        if unknown:
            raise ConfigError(f"{name} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(fields) or '(none)'}")
        return method(method.config_class(**options))

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self):
        return iter(self._methods.values())
