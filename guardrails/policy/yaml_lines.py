"""YAML to plain Python values, remembering the line of every key and list item.

PyYAML's composer keeps a start mark on every node; we build dicts/lists ourselves from the node tree so that a
validation error at path ``("policies", "default", "input", 2, "treshold")`` can be reported as ``line 14``.
Duplicate keys (which ``yaml.safe_load`` silently overwrites) are refused with both lines.
"""

from __future__ import annotations

from typing import Any

import yaml

from shieldkit.errors import ConfigError
from shieldkit.guardrails.policy.fields import Path, format_path


class LocatedYaml:
    """A parsed document and the 1-based line of each path in it."""

    def __init__(self, data: Any, lines: dict[Path, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its closest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def error(self, path: Path, message: str) -> ConfigError:
        line = self.line_of(path)
        where = f"{self.source}, line {line}" if line else self.source
        field = format_path(path)
        return ConfigError(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def load_located(text: str, source: str) -> LocatedYaml:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    lines: dict[Path, int] = {}
    if root is None:
        return LocatedYaml(None, lines, source)
    constructor = yaml.constructor.SafeConstructor()
    data = _convert(root, (), lines, constructor, source)
    return LocatedYaml(data, lines, source)


def _convert(node: yaml.Node, path: Path, lines: dict[Path, int], constructor, source: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{source}, line {key_node.start_mark.line + 1}: keys must be plain text")
            key = constructor.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{source}, line {line}: {format_path((*path, key))}: duplicate key '{key}' (first set on line {seen[key]})"
                )
            seen[key] = line
            lines[(*path, key)] = line
            result[key] = _convert(value_node, (*path, key), lines, constructor, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), lines, constructor, source) for index, item in enumerate(node.value)]
    return constructor.construct_object(node)
