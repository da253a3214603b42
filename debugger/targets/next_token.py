"""Target (c): one of the next token's top candidates, log p(candidate | prompt), optionally contrasted with another
candidate (log p(a) − log p(b): which tokens favour a over b)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from shieldkit.debugger.targets.language_model import LanguageModelTarget, Prompt, prompt_document, quote
from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime


@dataclass(frozen=True)
class Candidate:
    rank: int  # 0 = most likely
    id: int
    piece: str  # SentencePiece piece, "▁" = space
    text: str  # what it reads as
    probability: float
    logprob: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_token_candidates(runtime: GemmaRuntime, ids: torch.Tensor, top_k: int = 10) -> list[Candidate]:
    """The ``top_k`` most likely next tokens after ``ids`` [T] (logits at the last position only)."""
    if not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k must be a whole number >= 1, got {top_k!r}")
    with torch.inference_mode(), runtime.lock:
        logits = runtime.model(input_ids=ids[None].to(runtime.device), logits_to_keep=1, use_cache=False).logits
    log_probs = torch.log_softmax(logits[0, -1].float().cpu(), dim=-1)
    values, indices = torch.topk(log_probs, min(top_k, log_probs.numel()))
    pieces = runtime.tokenizer.convert_ids_to_tokens(indices.tolist())
    return [
        Candidate(rank, int(i), piece, runtime.decode([int(i)], skip_special_tokens=False), float(v.exp()), float(v))
        for rank, (i, v, piece) in enumerate(zip(indices, values, pieces))
    ]


class NextTokenTarget(LanguageModelTarget):
    """log p(token | prompt) for a chosen next token (by rank among the top candidates, or given)."""

    kind = "next_token"

    def __init__(self, runtime: GemmaRuntime, prompt: Prompt, token: int | str | None = None, *, rank: int = 0,
                 top_k: int = 10, contrast: int | str | None = None) -> None:
        document = prompt_document(runtime, prompt)
        super().__init__(runtime, document, torch.tensor([len(document) - 1]))
        self.candidates = next_token_candidates(runtime, document.ids, top_k)
        if token is None:
            if not isinstance(rank, int) or not 0 <= rank < len(self.candidates):
                raise ConfigError(f"rank must be in 0..{len(self.candidates) - 1}, got {rank!r}")
            self.token_id = self.candidates[rank].id
        else:
            self.token_id = _single_token(runtime, token, "token")
        self.contrast_id = None if contrast is None else _single_token(runtime, contrast, "contrast")
        self.token_text = runtime.decode([self.token_id], skip_special_tokens=False)

    @property
    def description(self) -> str:
        main = f"log p({quote(self.token_text)} | prompt)"
        if self.contrast_id is None:
            return main
        return f"{main} − log p({quote(self.runtime.decode([self.contrast_id], skip_special_tokens=False))} | prompt)"

    @property
    def highlight(self) -> None:
        return None

    @property
    def influence_end(self) -> int:
        return len(self.document)

    def score_logits(self, logits: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(logits[:, -1], dim=-1)  # [B, V]
        score = log_probs[:, self.token_id]
        return score if self.contrast_id is None else score - log_probs[:, self.contrast_id]

    def details(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "token_text": self.token_text,
            "contrast_id": self.contrast_id,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def _single_token(runtime: GemmaRuntime, token: int | str, field_name: str) -> int:
    if isinstance(token, bool) or not isinstance(token, (int, str)):
        raise ConfigError(f"{field_name} must be a token id or a one-token string, got {type(token).__name__}")
    if isinstance(token, int):
        if not 0 <= token < runtime.info.vocab_size:
            raise ConfigError(f"{field_name} id must be in 0..{runtime.info.vocab_size - 1}, got {token}")
        return token
    ids = runtime.encode(token, add_bos=False).tolist()
    if len(ids) != 1:
        pieces = runtime.tokenizer.convert_ids_to_tokens(ids)
        raise ConfigError(f"{field_name} {token!r} is {len(ids)} tokens {pieces}, not one; pick one of them")
    return ids[0]
