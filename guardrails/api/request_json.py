"""Request bodies as JSON, decoded strictly: hostile JSON is a 400 that names the problem, never a 500.

Besides malformed JSON and invalid UTF-8, a body is refused when it

- nests arrays and objects more than ``MAX_DEPTH`` deep (checked before parsing, so the parser cannot recurse
  into a ``RecursionError``),
- holds an integer outside the 64-bit range (Python would otherwise parse, or refuse past 4,300 digits with a
  ``ValueError``, numbers no upstream can take),
- holds a number beyond the range of a 64-bit float (``1e400`` would become infinity) or the non-JSON constants
  ``NaN``, ``Infinity`` and ``-Infinity`` (Python's parser accepts them by default),
- repeats a key in one object (parsers disagree on which copy wins, so a check could read one and the model
  another),
- is not an object, or contains an unpaired UTF-16 surrogate escape (``"\\ud800"`` is not Unicode text).

Problems found inside the document name the parameter they are in (``seed``, ``messages[0].content``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from shieldkit.guardrails.api.errors import ClientDisconnected, InvalidRequest, RequestTooLarge

MAX_DEPTH = 32  # nested arrays/objects; a chat request needs 5
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# A string (skipped whole, so brackets inside it do not count) or one bracket. The closing quote is optional: an
# unterminated string then runs to the end of the text in one match, where a required quote made the regex rescan
# the rest of the text from every later quote (quadratic: a 1 MB body of escaped quotes took about an hour).
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')


class _Refused:
    """Stands in for a value the decoder refuses, so the problem can be reported with the path it was found at."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


class _Hooks:
    """The parser's hooks for one document; ``refused`` says whether any value was replaced by a ``_Refused``."""

    def __init__(self) -> None:
        self.refused = False

    def _refuse(self, problem: str) -> _Refused:
        self.refused = True
        return _Refused(problem)

    def integer(self, digits: str) -> int | _Refused:
        if len(digits) <= 20:  # 2**63 has 19 digits; 20 with a sign (JSON has no leading zeros)
            value = int(digits)
            if INT_MIN <= value <= INT_MAX:
                return value
        return self._refuse(f"the integer {_shorten(digits)} ({len(digits.lstrip('-'))} digits) is outside the "
                            "64-bit range this proxy accepts (-2^63 to 2^63-1)")

    def real(self, text: str) -> float | _Refused:
        value = float(text)
        if math.isfinite(value):
            return value
        return self._refuse(f"the number {_shorten(text)} is beyond the range of a 64-bit float")

    def constant(self, name: str) -> _Refused:
        return self._refuse(f"{name} is not a JSON number (JSON has no NaN or Infinity)")

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            obj[key] = self._refuse("appears more than once in one JSON object") if key in obj else value
        return obj


def decode_json(raw: bytes) -> dict[str, Any]:
    """Bytes -> JSON object, with 400s that say exactly what is wrong (see the module docstring)."""
    if not raw.strip():
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid UTF-8 (at byte {exc.start})", code="invalid_utf8") from None
    if _too_deep(text):
        raise InvalidRequest(f"the request body nests arrays and objects more than {MAX_DEPTH} levels deep, the most "
                             "this proxy accepts", code="invalid_json")
    hooks = _Hooks()
    try:
        data = json.loads(text, object_pairs_hook=hooks.pairs, parse_int=hooks.integer, parse_float=hooks.real,
                          parse_constant=hooks.constant)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                             code="invalid_json") from None
    if hooks.refused:
        path, problem = _first_refused(data)
        raise InvalidRequest(f"{path or 'the request body'}: {problem}", param=path or None, code="invalid_json")
    if not isinstance(data, dict):
        raise InvalidRequest(f"the request body must be a JSON object, got a JSON {type(data).__name__}")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("the request contains an unpaired UTF-16 surrogate escape (not valid Unicode text)",
                             code="invalid_utf8") from None
    return data


def _too_deep(text: str) -> bool:
    """Whether ``text`` nests brackets (outside strings) more than ``MAX_DEPTH`` deep; stops scanning there."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # cannot be deeper than it has brackets
        return False
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        bracket = match.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


def _first_refused(data: Any) -> tuple[str, str]:
    """Path and problem of the first refused value, depth first (iterative: the depth is bounded anyway)."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _Refused):
            return path, value.problem
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}" if path else key, item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))
    raise LookupError("the decoder flagged a refused value but none is in the document")


def _shorten(text: str, keep: int = 12) -> str:
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-keep:]}"


async def read_body(request, limit: int, server: str) -> bytes:
    """The raw body of a Starlette ``request``, refused with 413 past ``limit`` bytes (declared or streamed);
    ``server`` names who refuses ("this proxy")."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"the request body is {int(declared)} bytes; {server} accepts at most {limit}")
    from starlette.requests import ClientDisconnect

    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"the request body is larger than {server}'s limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected(f"the client disconnected after {size} bytes of its request body") from None
    return b"".join(chunks)
