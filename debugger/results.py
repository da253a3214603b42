"""Typed results, exportable to JSON and to a self-contained HTML heatmap."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shieldkit.debugger.aggregation import Segment, aggregate
from shieldkit.debugger.base import SIGN_CONVENTION, UNSIGNED_NOTE


@dataclass(frozen=True)
class TokenScore:
    index: int  # position in the model input, <bos> = 0
    id: int
    piece: str  # SentencePiece piece ("▁" = space, "<0xF0>" = a byte)
    start: int  # character span [start, end) in SaliencyResult.text
    end: int
    kind: str  # text | control | outside (see shieldkit.debugger.tokens)
    score: float  # 0 for tokens that are not attributed


@dataclass(frozen=True)
class Completeness:
    """Integrated gradients' check: the attributions should sum to target(input) − target(baseline)."""

    attribution_sum: float
    target_value: float
    baseline_value: float
    gap: float  # attribution_sum − (target_value − baseline_value)
    relative_gap: float  # |gap| / |target_value − baseline_value|


@dataclass(frozen=True)
class SaliencyResult:
    method: str  # registry name
    method_label: str
    signed: bool  # False: scores are magnitudes
    config: dict[str, Any]  # the method's settings
    target_kind: str  # span | next_token | classifier
    target_description: str
    target_value: float  # the target at the real input
    target_details: dict[str, Any]
    highlight: tuple[int, int] | None  # token positions of the target itself
    text: str  # the text a person reads; token spans index into it
    tokens: tuple[TokenScore, ...]
    seconds: float
    model: str  # runtime.info.name
    completeness: Completeness | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    breaks: tuple[int, ...] = ()  # character offsets no segment spans (prompt | continuation, the target's edges)

    @property
    def sign_convention(self) -> str:
        return SIGN_CONVENTION if self.signed else UNSIGNED_NOTE

    @property
    def scores(self) -> list[float]:
        return [t.score for t in self.tokens]

    def segments(self, granularity: str = "tokens", pattern: str | None = None) -> list[Segment]:
        """Scores summed per token, word, sentence or regex match (sums are preserved)."""
        return aggregate(self.tokens, self.text, granularity, pattern, self.breaks)

    def to_dict(self, granularity: str = "tokens", pattern: str | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["highlight"] = list(self.highlight) if self.highlight else None
        data["sign_convention"] = self.sign_convention
        data["granularity"] = granularity
        data["pattern"] = pattern
        data["segments"] = [s.to_dict() for s in self.segments(granularity, pattern)]
        return data

    def to_json(self, granularity: str = "tokens", pattern: str | None = None, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(granularity, pattern), indent=indent, ensure_ascii=False)

    def to_html(self, granularity: str = "tokens", pattern: str | None = None, title: str | None = None) -> str:
        """A self-contained HTML page (inline CSS and JS; no external resources)."""
        from shieldkit.debugger.html import saliency_page

        return saliency_page(self, granularity, pattern, title=title)

    def save(self, path: str | Path, granularity: str = "tokens", pattern: str | None = None) -> Path:
        """Write ``.json`` or ``.html`` by the file's suffix."""
        path = Path(path)
        writers = {".json": self.to_json, ".html": self.to_html}
        if path.suffix not in writers:
            from shieldkit.errors import ConfigError

            raise ConfigError(f"cannot save a result as {path.suffix or 'a file without suffix'}; use .json or .html")
        path.write_text(writers[path.suffix](granularity, pattern), encoding="utf-8")
        return path
