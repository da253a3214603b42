"""The normalised view of a text that checks read, with a map back to the original (which the model gets).

Disguises undone, in this order (each step is one :mod:`~shieldkit.guardrails.pipeline.textmap` layer):

1. **Characters**: a run of invisible Unicode tag characters is spelled out in the ASCII it encodes (U+E0041 is
   an invisible ``A``: models can read such hidden text, so checks read it too); then, one character at a time,
   every whitespace character becomes a space; invisible and format characters are dropped (zero-width spaces and
   joiners, bidi controls, variation selectors, soft hyphens, NUL and other controls: categories Cc/Cf and
   Unicode's Default_Ignorable_Code_Point list); NFKC (fullwidth ``ｉｇｎｏｒｅ``, mathematical ``𝐢𝐠𝐧𝐨𝐫𝐞``,
   ligatures, circled letters); combining accents stripped (generic combining marks and those of Latin, Greek and
   Cyrillic; the vowel signs and points that Devanagari, Hebrew, Thai, ... need are kept); non-ASCII Latin letters
   named after an ASCII one (``ɢ``, ``ø``) become it.
2. **Base64 payloads**: a token of 12 or more base64 characters (padding included) that decodes to UTF-8 text is
   replaced by its own normalised decoding (recursively), whether or not the text asks to decode it: a request
   can phrase that in too many ways to recognise.
3. **Spaced letters**: four or more single letters separated by spaces or one of ``. - _ *`` are joined
   (``I g n o r e  p r e v i o u s`` -> ``Ignore previous``: the shortest gaps join, longer ones are word breaks;
   ``I.g.n.o.r.e p.r.e.v`` -> ``Ignore prev``: with punctuation between letters, spaces are word breaks).
4. **Look-alike letters** (confusables): in a word that has Latin letters, Cyrillic, Greek, Armenian, Cherokee, ...
   letters that look like a Latin letter become that letter (``іgnоrе`` with Cyrillic і, о, е -> ``ignore``). Words
   wholly in another script are left alone, so Russian or Greek text stays readable to the classifiers (a word made
   only of look-alikes beside Latin words is the ``disguise`` check's to catch).
5. **Whitespace**: runs of spaces collapse to one (so a newline inside a phrase does not defeat a ``.{0,60}`` rule).

Steps 2-4 repeat until nothing changes (joining letters can reveal a base64 token, decoding can reveal letters
to join), so normalising a view again leaves it as it is (property-tested in tests/guardrails/test_normalise.py).

Look-alikes come from ``confusable_homoglyphs`` (PyPI; 3.3.1 of January 2024, widely used), which ships Unicode's
confusables.txt and Scripts.txt as data and answers "which Latin letter does this character look like" and "which
script is it". ``unidecode`` was not chosen: it transliterates by sound (Cyrillic ``р`` -> ``r``), not by look
(``p``), so it would turn a disguised ``рrevious`` into ``rrevious``; ``confusables`` (PyPI) has had no release
since 2021.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import categories, confusables

from shieldkit.guardrails.pipeline.textmap import Edit, Mapped

# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt) not already covered by Cc/Cf.
DEFAULT_IGNORABLE = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
                     (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
                     (0xE0000, 0xE0FFF))
SPACE_LIKE = frozenset("\u2800")  # Braille blank: drawn as a space, not Unicode whitespace
MARK_SCRIPTS = frozenset({"INHERITED", "COMMON", "LATIN", "GREEK", "CYRILLIC"})  # whose combining marks are dropped
FOLDED_SCRIPTS = frozenset({"LATIN", "COMMON", "INHERITED"})  # not look-alikes of Latin: never folded
MAX_ROUNDS = 4  # rounds of steps 2-4; each round after the first only runs when the previous one changed something
LATIN_NAME = re.compile(r"LATIN (?:(SMALL|CAPITAL) LETTER|LETTER SMALL CAPITAL) ([A-Z])(?: WITH .*)?")
TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
NON_ASCII = re.compile(r"[^\x20-\x7e]+")
# Letters of the Latin blocks (Basic Latin, Latin-1, Extended-A/B, IPA, phonetic, Extended Additional/C/D/E,
# fullwidth): a quick filter before the script look-up.
LATIN_LETTER = re.compile(r"[A-Za-z\u00aa\u00ba\u00c0-\u024f\u0250-\u02af\u1d00-\u1dbf\u1e00-\u1eff"
                          r"\u2c60-\u2c7f\ua720-\ua7ff\uab30-\uab6f\uff21-\uff3a\uff41-\uff5a]")
WORD = re.compile(r"[^\W_]+")
SINGLE_LETTER = re.compile(r"(?<![^\W_])[^\W\d_](?![^\W_])")
LETTER_GAP = re.compile(r" +|[.\-_*]")
SPACES = re.compile(r" {2,}")
BASE64_TOKEN = re.compile(r"(?<![\w+/=-])(?=[\w+/=-]{12})[\w+/-]+={0,2}(?![\w+/=-])")  # 12+ characters
MIN_DECODED_LETTERS = 3
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")  # the vault's placeholders


def normalise(text: str) -> Mapped:
    """The normalised view of ``text``: ``.text`` is what checks read, ``.source_span(start, end)`` maps a range of
    it back to ``text``."""
    return _normalise(Mapped(text, text), depth=0)


def normalise_view(view: Mapped) -> Mapped:
    """:func:`normalise` applied to an already rewritten text: ``.source_span`` still maps to ``view.source``."""
    return _normalise(view, depth=0)


def _normalise(view: Mapped, depth: int) -> Mapped:
    view = view.then(_spell_tags(view.text))
    view = view.then(_fold_characters(view.text))
    for _ in range(MAX_ROUNDS):
        before = view.text
        view = view.then(_decode_base64(view.text, depth))
        view = join_spaced_letters(view)
        view = view.then(_fold_lookalikes(view.text))
        if view.text == before:
            break
    return view.then((m.start(), m.end(), " ") for m in SPACES.finditer(view.text))


def has_visible_text(text: str) -> bool:
    """Whether the view of ``text`` holds more than spaces: some character is neither whitespace, nor invisible,
    nor a dropped mark (tag characters spelling a printable character count as text). Stops at the first one."""
    return any(fold_character(c).strip() or 0xE0021 <= ord(c) <= 0xE007E for c in text)


# --- step 1: characters ----------------------------------------------------------------------------------------


def _spell_tags(text: str) -> list[Edit]:
    """Each run of tag characters -> the printable ASCII it encodes, set apart by spaces."""
    edits = []
    for match in TAG_RUN.finditer(text):
        spelled = "".join(chr(ord(c) - 0xE0000) for c in match.group() if 0xE0020 <= ord(c) <= 0xE007E)
        edits.append((match.start(), match.end(), f" {spelled} " if spelled.strip() else ""))
    return edits


class _FoldTable(dict):
    """``str.translate`` table of step 1, filled on first sight of each character."""

    def __missing__(self, code: int) -> str:
        self[code] = folded = fold_character(chr(code))
        return folded


_FOLD_TABLE = _FoldTable()  # a cache of a pure function: what it holds never depends on a request


def _fold_characters(text: str) -> list[Edit]:
    edits = []
    for match in NON_ASCII.finditer(text):
        run = match.group()
        if run.translate(_FOLD_TABLE) == run:  # most runs (words of other scripts) do not change
            continue
        for offset, char in enumerate(run):
            folded = _FOLD_TABLE[ord(char)]
            if folded != char:
                edits.append((match.start() + offset, match.start() + offset + 1, folded))
    return edits


@lru_cache(maxsize=65536)
def fold_character(char: str) -> str:
    """Step 1 for one character; applying it to each character of its own result changes nothing."""
    folded = char
    for _ in range(4):
        again = "".join(_fold_once(c) for c in folded)
        if again == folded:
            break
        folded = again
    return folded


def _fold_once(char: str) -> str:
    if char.isspace() or char in SPACE_LIKE:
        return " "
    if is_invisible(char):
        return ""
    if _dropped_mark(char):
        return ""
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if not _dropped_mark(c))
    composed = unicodedata.normalize("NFKC", kept)
    return "".join(_latin_ascii(c) for c in composed)


def is_invisible(char: str) -> bool:
    """A format or control character, or a default-ignorable one (drawn as nothing). Whitespace is not."""
    if char.isspace():
        return False
    if unicodedata.category(char) in ("Cc", "Cf"):
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in DEFAULT_IGNORABLE)


@lru_cache(maxsize=65536)
def script(char: str) -> str:
    """The Unicode script of a character, e.g. LATIN, CYRILLIC, COMMON, INHERITED (Scripts.txt)."""
    return categories.alias(char)


def _is_latin(char: str) -> bool:
    return char.isalpha() and script(char) == "LATIN"


def _has_latin(word: str) -> bool:
    return any(_is_latin(c) for c in LATIN_LETTER.findall(word))


def _dropped_mark(char: str) -> bool:
    return unicodedata.category(char) in ("Mn", "Me") and script(char) in MARK_SCRIPTS


@lru_cache(maxsize=4096)
def _latin_ascii(char: str) -> str:
    """``ɢ`` (LATIN LETTER SMALL CAPITAL G) -> ``g``, ``ø`` -> ``o``; any other character stays."""
    if char.isascii() or not char.isalpha():
        return char
    match = LATIN_NAME.fullmatch(unicodedata.name(char, ""))
    if match is None:
        return char
    return match.group(2) if match.group(1) == "CAPITAL" else match.group(2).lower()


# --- step 2: base64 --------------------------------------------------------------------------------------------


def _decode_base64(text: str, depth: int) -> list[Edit]:
    if depth >= 16:  # each level shrinks by a quarter, so real nesting ends long before this
        return []
    edits = []
    for match in BASE64_TOKEN.finditer(text):
        if PLACEHOLDER.fullmatch(text, max(match.start() - 1, 0), match.end() + 1):
            continue  # a redaction placeholder (<CREDIT_CARD_1>) stays what it is
        decoded = decode_base64_text(match.group())
        if decoded is not None:
            inner = _normalise(Mapped(decoded, decoded), depth + 1).text.strip()
            if inner:
                edits.append((match.start(), match.end(), f" {inner} "))
    return edits


def decode_base64_text(token: str) -> str | None:
    """The text a base64 (or base64url) token decodes to, or None when it is not base64 of printable UTF-8 text.
    Look-alike letters in the token are read as the Latin letters they imitate."""
    compact = "".join(latin_lookalike(c) or c for c in token).rstrip("=")
    if not compact.isascii() or len(compact) % 4 == 1:
        return None
    try:
        raw = base64.b64decode(compact.replace("-", "+").replace("_", "/") + "=" * (-len(compact) % 4), validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    if not all(c.isprintable() or c in "\t\n\r" for c in decoded):
        return None
    letters = sum(c.isalpha() for c in decoded)
    if letters < MIN_DECODED_LETTERS or sum(c.isalnum() or c.isspace() for c in decoded) < 0.5 * len(decoded):
        return None
    return decoded


# --- step 3: spaced letters ------------------------------------------------------------------------------------


def join_spaced_letters(view: Mapped) -> Mapped:
    """Join runs until none is left (each pass joins at least the shortest gaps of every run)."""
    while True:
        edits = _spaced_letter_edits(view.text)
        if not edits:
            return view
        view = view.then(edits)


def _spaced_letter_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    run: list[re.Match[str]] = []
    for letter in SINGLE_LETTER.finditer(text):
        if run and not LETTER_GAP.fullmatch(text, run[-1].end(), letter.start()):
            edits += _join_run(text, run)
            run = []
        run.append(letter)
    return edits + _join_run(text, run)


def _join_run(text: str, run: list[re.Match[str]]) -> list[Edit]:
    if len(run) < 4:
        return []
    gaps = [(a.end(), b.start()) for a, b in zip(run, run[1:])]
    if any(text[start] != " " for start, _ in gaps):  # letters joined by punctuation: spaces are word breaks
        return [(start, end, "") for start, end in gaps if text[start] != " "]
    tight = min(end - start for start, end in gaps)
    return [(start, end, "") for start, end in gaps if end - start == tight]


# --- step 4: look-alike letters --------------------------------------------------------------------------------


def _fold_lookalikes(text: str) -> list[Edit]:
    if text.isascii():
        return []
    edits = []
    for match in WORD.finditer(text):
        word = match.group()
        if word.isascii() or not _has_latin(word):
            continue
        for offset, char in enumerate(word):
            latin = latin_lookalike(char)
            if latin is not None:
                edits.append((match.start() + offset, match.start() + offset + 1, latin))
    return edits


@lru_cache(maxsize=65536)
def latin_lookalike(char: str) -> str | None:
    """The ASCII letter a non-Latin letter imitates (Cyrillic ``р`` -> ``p``, Greek ``Ν`` -> ``N``), or None."""
    if char.isascii() or not char.isalpha() or script(char) in FOLDED_SCRIPTS:
        return None
    found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"])
    for entry in found or ():
        for homoglyph in entry["homoglyphs"]:
            latin = "".join(_latin_ascii(c) for c in homoglyph["c"])
            if len(latin) == 1 and latin.isascii() and latin.isalpha():
                if char.isupper():
                    return "I" if latin == "l" else latin.upper()  # confusables.txt's prototype of I is l
                return latin.lower() if char.islower() else latin
    return None


def lookalike_words(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` holding words that mix Latin letters with look-alikes from another script, or that are
    made only of look-alikes (three or more) and stand next to a Latin word: the marks of a disguised word."""
    view = Mapped(text, text).then(_fold_characters(text))  # tag characters are dropped here, not spelled out
    words = [w for w in WORD.finditer(view.text) if not w.group().isdigit()]
    latin = [_has_latin(w.group()) for w in words]
    spans = []
    for index, word in enumerate(words):
        letters = [c for c in word.group() if c.isalpha() and not c.isascii()]
        if latin[index]:
            disguised = any(latin_lookalike(c) is not None for c in letters)
        else:
            beside_latin = (index > 0 and latin[index - 1]) or (index + 1 < len(words) and latin[index + 1])
            disguised = beside_latin and len(letters) >= 3 and all(latin_lookalike(c) is not None for c in letters)
        if disguised:
            spans.append(view.source_span(word.start(), word.end()))
    return spans
