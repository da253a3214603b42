"""Explicit registration of check kinds: duplicates are refused, a miss lists what exists."""

from __future__ import annotations

from collections.abc import Iterable

from shieldkit.guardrails.checks.base import CheckKind


class CheckRegistry:
    def __init__(self, kinds: Iterable[CheckKind] = ()) -> None:
        self._kinds: dict[str, CheckKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: CheckKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"check kind '{kind.name}' is already registered (by {self._kinds[kind.name].config.__name__})")
        self._kinds[kind.name] = kind

    def get(self, name: object) -> CheckKind:
        if name not in self._kinds:
            raise KeyError(f"unknown check kind {name!r}; known kinds: {', '.join(self.names)}")
        return self._kinds[name]  # type: ignore[index]

    @property
    def names(self) -> list[str]:
        return list(self._kinds)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds
