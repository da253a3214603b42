"""``kind: words``: a list of banned words or phrases, matched as whole words.

Each word is also matched in its normalised form (``café`` as ``cafe``), since the check reads the normalised
view of the text as well as the original."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shieldkit.errors import ConfigError
from shieldkit.guardrails.checks.base import BuildContext, CheckConfig, CheckKind
from shieldkit.guardrails.checks.regex import PatternScanner, placeholder_label
from shieldkit.guardrails.pipeline.normalise import normalise
from shieldkit.guardrails.policy.fields import FieldError, require


@dataclass(frozen=True, kw_only=True)
class WordsConfig(CheckConfig):
    words: tuple[str, ...] = ()  # words or phrases; a phrase matches across any whitespace
    words_file: str | None = None  # a text file with one word or phrase per line (# starts a comment), relative to the policy
    ignore_case: bool = True  # match regardless of letter case
    label: str | None = None  # placeholder type when redacting (default: the name in capitals)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.words) or self.words_file is not None, "words", "give words, words_file, or both")
        for index, word in enumerate(self.words):
            if not word.strip():
                raise FieldError(("words", index), "must not be empty")


def word_pattern(words: list[str]) -> str:
    written = {w.strip() for w in words if w.strip()}
    phrases = sorted(written | {normalise(w).text.strip() for w in written} - {""}, key=len, reverse=True)
    alternatives = [r"\s+".join(re.escape(part) for part in phrase.split()) for phrase in phrases]
    return r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"


def build(config: WordsConfig, context: BuildContext) -> PatternScanner:
    words = list(config.words)
    if config.words_file is not None:
        path = (context.base_dir / config.words_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"check '{config.name}': cannot read words_file {path}: {exc}") from None
        words += [line.split("#", 1)[0] for line in lines]
        if not any(w.strip() for w in words):
            raise ConfigError(f"check '{config.name}': words_file {path} has no words")
    flags = re.IGNORECASE if config.ignore_case else 0
    return PatternScanner([re.compile(word_pattern(words), flags)], placeholder_label(config, config.label))


KIND = CheckKind("words", WordsConfig, build, summary="fires on banned words or phrases (whole words)")
