"""PII recognizers: a candidate pattern plus a validator (Luhn for cards, mod-97 for IBANs, ...).

Patterns find candidates; validators keep only those that are structurally valid, which is what keeps random
digit runs from being redacted as card numbers. Each recognizer returns typed spans; overlapping spans are
resolved in the order of ``RECOGNIZERS`` (a card number is not also reported as a phone number).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shieldkit.guardrails.checks.base import Finding
from shieldkit.guardrails.checks.holds import GrowingPattern, Hold, merge

# Official IBAN lengths by country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers (A=10), remainder mod 97 is 1."""
    compact = compact.upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", compact):
        return False
    if IBAN_LENGTHS.get(compact[:2], len(compact)) != len(compact) or not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


# Each validator gets the candidate text and returns how many characters of it are the entity (0 = reject).
Validator = Callable[[str], int]


def _card(candidate: str) -> int:
    digits = re.sub(r"[ -]", "", candidate)
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return 0
    return len(candidate) if luhn_valid(digits) else 0


def _iban(candidate: str) -> int:
    """The candidate may run on into the next word; keep exactly the country's length of IBAN characters."""
    expected = IBAN_LENGTHS.get(candidate[:2].upper())
    kept, used = "", 0
    for char in candidate:
        if expected is not None and len(kept) == expected:
            break
        used += 1
        if char != " ":
            kept += char
    if expected is not None:
        return used if len(kept) == expected and iban_valid(kept) else 0
    return used if iban_valid(kept) else 0


def _ssn(candidate: str) -> int:
    area, group, serial = re.split(r"[- ]", candidate)
    invalid = area in ("000", "666") or area.startswith("9") or group == "00" or serial == "0000"
    return 0 if invalid else len(candidate)


def _ip(candidate: str) -> int:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return 0
    if address.version == 6 and candidate.count(":") < 2:
        return 0
    return len(candidate)


_DATE = re.compile(r"\d{4}([-./])\d{1,2}\1\d{1,2}|\d{1,2}([-./])\d{1,2}\2\d{2,4}")
_SSN_SHAPE = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")  # an SSN the SSN recognizer rejected is not a phone either
_DATE_TIME = re.compile(rf"(?:{_DATE.pattern})\s\d")


def _phone(candidate: str) -> int:
    """7-15 digits. Runs of digits split only by spaces are too often amounts or house numbers: those need 9 digits
    unless the number starts with + or an area code in parentheses."""
    number = re.split(r"\s?(?:x|ext\.?)\s?\d", candidate, maxsplit=1)[0]
    digits = re.sub(r"\D", "", number)
    if not 7 <= len(digits) <= 15 or _DATE.fullmatch(number) or _DATE_TIME.match(number) or _SSN_SHAPE.fullmatch(number):
        return 0
    marked = number.startswith(("+", "("))
    if not marked and not re.search(r"[.-]", number) and len(digits) < 9:
        return 0
    return len(candidate)


def _accept(candidate: str) -> int:
    return len(candidate)


@dataclass(frozen=True)
class Recognizer:
    entity: str  # the name used in policies (`entities: [email, ...]`)
    label: str  # the placeholder type, e.g. <EMAIL_1>
    pattern: re.Pattern[str]
    validate: Validator


RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer(
        "email", "EMAIL",
        re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"),
        _accept,
    ),
    Recognizer("iban", "IBAN", re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?![A-Za-z0-9])"), _iban),
    Recognizer("credit_card", "CREDIT_CARD", re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"), _card),
    Recognizer("us_ssn", "US_SSN", re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])"), _ssn),
    Recognizer(
        "ip_address", "IP_ADDRESS",
        re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)|(?<![:\w])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{1,4}(?![:\w])"),
        _ip,
    ),
    Recognizer(
        "phone", "PHONE",
        re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w]|[.-]\d)"),
        _phone,
    ),
)
ENTITIES: tuple[str, ...] = tuple(r.entity for r in RECOGNIZERS)
_GROWING = {r.entity: GrowingPattern(r.pattern) for r in RECOGNIZERS}


def find_pii(text: str, entities: Iterable[str] = ENTITIES) -> list[Finding]:
    """Non-overlapping PII spans in ``text``, sorted by position."""
    wanted = set(entities)
    taken: list[Finding] = []
    for recognizer in RECOGNIZERS:
        if recognizer.entity not in wanted:
            continue
        for match in recognizer.pattern.finditer(text):
            length = recognizer.validate(match.group())
            if not length:
                continue
            span = Finding(match.start(), match.start() + length, recognizer.label)
            if not any(span.start < other.end and other.start < span.end for other in taken):
                taken.append(span)
    return sorted(taken, key=lambda f: f.start)


def pii_hold(text: str, entities: Iterable[str] = ENTITIES) -> Hold:
    """Where streamed ``text`` must not be cut: inside a valid candidate, or where a candidate may still grow."""
    wanted = set(entities)
    return merge((_GROWING[r.entity].hold(text, lambda m, r=r: bool(r.validate(m.group())))
                  for r in RECOGNIZERS if r.entity in wanted), len(text))
