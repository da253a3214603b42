"""Typed, frozen config dataclasses built from plain dicts, with errors that name the exact field path.

Every policy config is a frozen dataclass whose ``__post_init__`` calls :func:`validate_fields` (types from the
annotations, lists turned into tuples) and then checks its own values with :func:`require`. :func:`from_dict`
builds one from the mapping a YAML file gave, refusing unknown keys with a "did you mean" hint. Errors carry the
path of the offending value (``("policies", "default", "input", 2, "threshold")``) so the YAML layer can name the
line it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

Path = tuple[str | int, ...]


class FieldError(ValueError):
    """A bad value at ``path`` (relative to the object being built)."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path: Path = (path,) if isinstance(path, str) else tuple(path)
        self.message = message
        super().__init__(f"{format_path(self.path)}: {message}" if self.path else message)

    def under(self, *prefix: str | int) -> FieldError:
        return FieldError((*prefix, *self.path), self.message)


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise FieldError(field, message)


# A hook that builds values of polymorphic types (e.g. a check config chosen by its ``kind``) from a dict.
Builder = Callable[[type, Mapping[str, Any]], Any]


def from_dict(cls: type, data: Any, builders: Mapping[type, Builder] | None = None) -> Any:
    """``cls(**data)`` with unknown keys refused, missing keys named, nested dataclasses built recursively."""
    if not isinstance(data, Mapping):
        raise FieldError((), f"expected a mapping of {describe_keys(cls)}, got {type_name(data)}")
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if not isinstance(key, str):
            raise FieldError((), f"keys must be text, got {key!r}")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise FieldError((key,), f"unknown key '{key}'{hint}; known keys: {', '.join(known)}")
    missing = [name for name, f in known.items() if name not in data and _required(f)]
    if missing:
        raise FieldError((), f"missing key '{missing[0]}' (required: {', '.join(n for n, f in known.items() if _required(f))})")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        try:
            values[key] = _build_value(value, hints[key], builders or {})
        except FieldError as exc:
            raise exc.under(key) from None
    return cls(**values)


def validate_fields(obj: Any) -> None:
    """Check every field of a (frozen) dataclass against its annotation; lists become tuples."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        try:
            value = _coerce(getattr(obj, f.name), hints[f.name])
        except FieldError as exc:
            raise exc.under(f.name) from None
        object.__setattr__(obj, f.name, value)


def describe_keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls) if f.init)


def type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing (null)"}.get(
        type(value), type(value).__name__
    )


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _build_value(value: Any, hint: Any, builders: Mapping[type, Builder]) -> Any:
    """Like _coerce, but builds dataclasses (and registered polymorphic types) from mappings."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return None if value is None else _build_value(value, inner[0], builders)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise FieldError((), f"expected a list, got {type_name(value)}")
        built = []
        for index, item in enumerate(value):
            try:
                built.append(_build_value(item, args[0], builders))
            except FieldError as exc:
                raise exc.under(index) from None
        return tuple(built)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise FieldError((), f"expected a mapping, got {type_name(value)}")
        built_map = {}
        for key, item in value.items():
            try:
                built_map[key] = _build_value(item, args[1], builders)
            except FieldError as exc:
                raise exc.under(key) from None
        return built_map
    if isinstance(hint, type) and isinstance(value, Mapping):
        for base, build in builders.items():
            if issubclass(hint, base):
                return build(hint, value)
        if dataclasses.is_dataclass(hint):
            return from_dict(hint, value, builders)
    return value  # plain values are checked by the dataclass's own validate_fields


def _coerce(value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option)
            except FieldError as exc:
                errors.append(exc.message)
        raise FieldError((), " or ".join(dict.fromkeys(errors)))
    if origin is Literal:
        if value not in args:
            raise FieldError((), f"must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise FieldError((), f"expected a list, got {type_name(value)}")
        coerced = []
        for index, item in enumerate(value):
            try:
                coerced.append(_coerce(item, args[0]))
            except FieldError as exc:
                raise exc.under(index) from None
        return tuple(coerced)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise FieldError((), f"expected a mapping, got {type_name(value)}")
        coerced_map = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise FieldError((), f"keys must be text, got {key!r}")
            try:
                coerced_map[key] = _coerce(item, args[1])
            except FieldError as exc:
                raise exc.under(key) from None
        return coerced_map
    if hint is bool:
        if not isinstance(value, bool):
            raise FieldError((), f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError((), f"expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FieldError((), f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise FieldError((), f"expected text, got {type_name(value)} {value!r}")
        return value
    if isinstance(hint, type):
        if not isinstance(value, hint):
            raise FieldError((), f"expected {hint.__name__}, got {type_name(value)}")
        return value
    return value
