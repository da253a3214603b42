"""The shared machinery of language-model targets: score log-probabilities at a few positions only.

Computing logits only where the target needs them (``logits_to_keep`` = those positions) skips most of the
262,144-way output projection, which otherwise dominates a forward pass on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from shieldkit.debugger.tokens import Document, build_document, decode_pieces, mark_template
from shieldkit.errors import ConfigError
from shieldkit.model.internals import batch_embedding_gradients

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

# a text to continue, chat messages (a model turn follows), or token ids [T] (with <bos>) as they are
Prompt = str | Sequence[Mapping[str, Any]] | torch.Tensor


class LanguageModelTarget:
    """A target computed from Gemma's logits at ``positions`` [P]. Subclasses define ``score_logits``."""

    kind = "language_model"

    def __init__(self, runtime: GemmaRuntime, document: Document, positions: torch.Tensor) -> None:
        limit = getattr(runtime.model.config, "max_position_embeddings", None)
        if limit is not None and len(document) > limit:
            raise ConfigError(f"the input has {len(document)} tokens; the model reads at most {limit}")
        self._runtime = runtime
        self._document = document
        self.positions = positions.long()  # [P] logits positions the score reads

    @property
    def runtime(self) -> GemmaRuntime:
        return self._runtime

    @property
    def document(self) -> Document:
        return self._document

    def score_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """float32 logits [B, P, V] at ``positions`` -> scores [B]."""
        raise NotImplementedError

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        model = self._runtime.model
        dtype = next(model.parameters()).dtype
        with torch.inference_mode(), self._runtime.lock:
            out = model(
                inputs_embeds=embeddings.to(self._runtime.device, dtype),
                logits_to_keep=self.positions.to(self._runtime.device),
                use_cache=False,
            )
            return self.score_logits(out.logits.float()).float().cpu()

    def scores_after(self, embeddings: torch.Tensor, start: int) -> torch.Tensor:
        """``scores`` for a batch [B, T, D] whose rows all equal row 0 before position ``start``: the shared prefix
        runs once and its KV cache serves every row, so each row costs only its T − start tokens. Falls back to
        ``scores`` when the prefix would cover a scored position."""
        if not 0 < start <= int(self.positions.min()):
            return self.scores(embeddings)
        model = self._runtime.model
        dtype = next(model.parameters()).dtype
        inputs = embeddings.to(self._runtime.device, dtype)
        with torch.inference_mode(), self._runtime.lock:
            cache = model(inputs_embeds=inputs[:1, :start], use_cache=True, logits_to_keep=1).cache
            cache.batch_repeat_interleave(inputs.shape[0])
            out = model(inputs_embeds=inputs[:, start:], cache=cache, use_cache=True,
                        logits_to_keep=(self.positions - start).to(self._runtime.device))
            return self.score_logits(out.logits.float()).float().cpu()

    def scores_and_gradients(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = next(self._runtime.model.parameters()).dtype
        return batch_embedding_gradients(self._runtime, embeddings.to(dtype), self.score_logits, positions=self.positions)


def token_logprobs(logits: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """logits [B, P, V], token_ids [P] -> log p(token_ids[p]) at each position, [B, P]."""
    log_probs = torch.log_softmax(logits, dim=-1)
    index = token_ids.to(logits.device)[None, :, None].expand(logits.shape[0], -1, 1)
    return log_probs.gather(-1, index).squeeze(-1)


def prompt_part(runtime: GemmaRuntime, prompt: Prompt) -> tuple[torch.Tensor, str]:
    """(ids [T] with <bos>, the text a person reads): a chat is shown rendered in Gemma's turn format."""
    if isinstance(prompt, torch.Tensor):
        if prompt.dim() != 1 or prompt.numel() == 0:
            raise ConfigError("prompt ids must be a non-empty 1-D LongTensor [T]")
        ids = prompt.long().cpu()
        return ids, decode_pieces(runtime.tokenizer, ids.tolist())
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ConfigError("the prompt must not be empty")
        return runtime.encode(prompt), prompt
    return runtime.encode_chat(prompt), runtime.render_chat(prompt)


def prompt_document(runtime: GemmaRuntime, prompt: Prompt, extra: Sequence[tuple[Sequence[int], str]] = ()) -> Document:
    """The prompt (and ``extra`` parts after it) as a Document; a chat's turn template is marked ``control``."""
    ids, text = prompt_part(runtime, prompt)
    document = build_document(runtime.tokenizer, [(ids.tolist(), text), *extra])
    if isinstance(prompt, (str, torch.Tensor)):
        return document
    from shieldkit.model.chat import content_spans

    tail = [(len(text), len(document.text))] if extra else []
    return mark_template(document, [*content_spans(prompt, chat_format=runtime.info.chat_format), *tail])


def quote(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return '"' + shown.replace("\n", "\\n") + '"'
