"""Token pieces mapped back to the characters of the original text.

Gemma's tokenizer is SentencePiece: a piece's text is its string with "▁" for a space, or one raw byte for a
byte-fallback piece ("<0xF0>"). Control tokens (<bos>, <start_of_turn>, ...) are added tokens whose text may or
may not appear literally in what the user sees (a rendered chat shows "<start_of_turn>"; a prompt never shows
<bos>).

Alignment works on UTF-8 bytes, so it also covers token ids that were generated rather than encoded from a text.
A token's character span holds the characters it *completes*: a character split over several byte-fallback pieces
belongs to the piece holding its last byte, and the earlier pieces get an empty span at that character. Spans of
the text tokens are contiguous and never overlap, so ``"".join(text[s:e] for s, e in spans) == text`` whenever the
tokens spell out the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

# text: a piece of the text, attributable. control: a control token (<bos>, <start_of_turn>), never attributed.
# outside: a token the reader does not see as part of the text (e.g. a classifier's prompt template).
TokenKind = Literal["text", "control", "outside"]

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_SPACE = "\u2581"  # "▁"
_RESYNC_WINDOW = 16  # bytes searched ahead when a piece does not match the text at the cursor


@dataclass(frozen=True)
class Token:
    index: int  # position in the model input, <bos> = 0
    id: int
    piece: str  # the SentencePiece piece, e.g. "▁Paris" or "<0xF0>"
    start: int  # character span [start, end) in Document.text; empty for <bos> and partial bytes
    end: int
    kind: TokenKind

    @property
    def attributable(self) -> bool:
        return self.kind == "text"


@dataclass(frozen=True)
class Document:
    """The text a person reads and the tokens the model reads, aligned."""

    text: str
    tokens: tuple[Token, ...]
    parts: tuple[int, ...] = ()  # character offsets where the second, third, ... part begins (prompt | continuation)

    @property
    def ids(self) -> torch.Tensor:
        import torch

        return torch.tensor([t.id for t in self.tokens], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.tokens)

    def token_text(self, index: int) -> str:
        token = self.tokens[index]
        return self.text[token.start : token.end] if token.end > token.start else token.piece


def piece_bytes(tokenizer: PreTrainedTokenizerBase, token_id: int) -> bytes:
    """The bytes a piece stands for (a control token stands for its own literal name)."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is None:
        return b""
    match = _BYTE_PIECE.match(piece)
    if match:
        return bytes([int(match.group(1), 16)])
    return piece.replace(_SPACE, " ").encode("utf-8")


def is_control(tokenizer: PreTrainedTokenizerBase, token_id: int) -> bool:
    """Special added tokens (<bos>, <eos>, <start_of_turn>, <unused…>) are control tokens; added tokens that are
    ordinary text ("\\n\\n", "<table>") are not."""
    return int(token_id) in _control_ids(tokenizer)


def decode_pieces(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """The text of generated ids, built from their pieces so that it aligns with them exactly (control tokens
    are left out; an incomplete trailing character is dropped)."""
    data = b"".join(piece_bytes(tokenizer, i) for i in ids if not is_control(tokenizer, i))
    return data.decode("utf-8", errors="ignore")


def align(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int], text: str) -> list[tuple[int, int, bool]]:
    """For each id: (start, end, control) with [start, end) the characters of ``text`` it completes.

    Pieces are matched against the text's bytes left to right. A piece that does not match at the cursor is looked
    for a few bytes ahead (the skipped characters belong to no token); one not found gets an empty span and the
    cursor stays, so a mismatch never shifts later tokens off their text. Control tokens match only at the cursor.
    """
    data = text.encode("utf-8")
    completed = _completed_chars(text)  # completed[b] = characters whose last byte lies before byte b
    cursor = 0
    spans = []
    for token_id in ids:
        control = is_control(tokenizer, token_id)
        pattern = _pattern(tokenizer, token_id, control)
        start = end = cursor
        match = pattern.match(data, cursor) if pattern else None
        if match is None and pattern is not None and not control:
            match = pattern.search(data, cursor, cursor + _RESYNC_WINDOW + 4 * len(pattern.pattern))
        if match is not None and match.end() > cursor:
            start, end = match.start(), match.end()  # characters skipped to resynchronise belong to no token
        spans.append((completed[start], completed[end], control))
        cursor = end
    return spans


def build_document(
    tokenizer: PreTrainedTokenizerBase, parts: Sequence[tuple[Sequence[int], str | None]]
) -> Document:
    """A Document from consecutive parts: (ids, text) pairs whose texts are concatenated, or (ids, None) for
    tokens outside the text (they get kind "outside" and an empty span where they sit)."""
    text = ""
    tokens: list[Token] = []
    starts: list[int] = []
    for ids, part_text in parts:
        if tokens:
            starts.append(len(text))
        ids = [int(i) for i in ids]
        pieces = tokenizer.convert_ids_to_tokens(ids)
        if part_text is None:
            spans = [(0, 0, True)] * len(ids)
            kinds: list[TokenKind] = ["outside"] * len(ids)
        else:
            spans = align(tokenizer, ids, part_text)
            kinds = ["control" if control else "text" for _, _, control in spans]
        offset = len(text)
        for (start, end, _), token_id, piece, kind in zip(spans, ids, pieces, kinds):
            if part_text is None:
                start = end = 0
            tokens.append(Token(len(tokens), token_id, piece, offset + start, offset + end, kind))
        text += part_text or ""
    return Document(text, tuple(tokens), tuple(dict.fromkeys(starts)))


def mark_template(document: Document, content: Sequence[tuple[int, int]]) -> Document:
    """The document with every text token that lies wholly outside the character ranges ``content`` marked as
    ``control``: a chat's role names and the newlines of its turn format are template, not the user's text."""

    def inside(token: Token) -> bool:
        return any(token.start < end and start < token.end for start, end in content)

    tokens = tuple(
        token if token.kind != "text" or inside(token) else Token(token.index, token.id, token.piece, token.start,
                                                                  token.end, "control")
        for token in document.tokens
    )
    return Document(document.text, tokens, document.parts)


def _pattern(tokenizer: PreTrainedTokenizerBase, token_id: int, control: bool) -> re.Pattern[bytes] | None:
    """A bytes pattern for what the piece can stand for in a text: "▁" is a space, or a literal "▁" (the tokenizer
    folds both into the same marker); a byte piece is that byte; a control token is its literal name."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id)) or ""
    if not piece:
        return None
    if control or _BYTE_PIECE.match(piece):
        return re.compile(re.escape(piece.encode("utf-8") if control else piece_bytes(tokenizer, token_id)))
    parts = [re.escape(part.encode("utf-8")) for part in piece.split(_SPACE)]
    return re.compile(b"(?: |\xe2\x96\x81)".join(parts))


def _completed_chars(text: str) -> list[int]:
    """completed[b] for every byte boundary b in 0..len(utf8): characters fully inside the first b bytes."""
    completed = [0]
    for count, char in enumerate(text, start=1):
        width = len(char.encode("utf-8"))
        completed += [count - 1] * (width - 1) + [count]
    return completed


def _control_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    cached = getattr(tokenizer, "_shieldkit_control_ids", None)
    if cached is None:
        decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        cached = frozenset(int(i) for i, added in decoder.items() if getattr(added, "special", False))
        cached |= frozenset(int(i) for i in getattr(tokenizer, "all_special_ids", []) or [])
        tokenizer._shieldkit_control_ids = cached  # computed once per tokenizer (6k added tokens)
    return cached
