"""Model internals for the debugger and the classifiers, with tensor shapes.

Notation: T tokens, V vocabulary size, D hidden size, L layers, H attention heads, B batch.
Token positions include <bos> at 0. ``logits[t]`` is the model's prediction for token ``t + 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime


@dataclass(frozen=True)
class ForwardOutput:
    input_ids: torch.Tensor  # [T]
    logits: torch.Tensor  # [T, V] float32
    # (L + 1) x [T, D]: [0] = the scaled input embeddings layer 0 sees, [l] = the residual stream after layer l
    # for l < L, and [L] = the last layer's output after the final RMSNorm (as transformers returns it, so
    # unembed(hidden_states[L], normed=True) == logits). None unless asked for.
    hidden_states: tuple[torch.Tensor, ...] | None
    # L x [H, T, T]: attentions[l][h, i, j] = weight query i puts on key j; each row sums to 1. None unless asked for.
    attentions: tuple[torch.Tensor, ...] | None

    def tokens(self, runtime: GemmaRuntime) -> list[str]:
        """The token strings (SentencePiece pieces, "▁" marking a leading space)."""
        return runtime.tokenizer.convert_ids_to_tokens(self.input_ids.tolist())


@dataclass(frozen=True)
class EmbeddingGradients:
    input_ids: torch.Tensor  # [T]
    embeddings: torch.Tensor  # [T, D] scaled input embeddings, as layer 0 sees them
    gradients: torch.Tensor  # [T, D] d(target) / d(embeddings)
    target: float  # the target's value at these embeddings


def forward(
    runtime: GemmaRuntime, text_or_ids: str | torch.Tensor, *, hidden_states: bool = False, attentions: bool = False
) -> ForwardOutput:
    """One forward pass over a text (encoded with <bos>) or token ids [T]. Attention weights switch the model to
    eager attention for this call only."""
    ids = _as_ids(runtime, text_or_ids)
    context = runtime.eager_attention() if attentions else runtime.lock
    with torch.inference_mode(), context:
        out = runtime.model(
            input_ids=ids[None].to(runtime.device),
            output_hidden_states=hidden_states,
            output_attentions=attentions,
            use_cache=False,
        )
    return ForwardOutput(
        input_ids=ids,
        logits=out.logits[0].float().cpu(),
        hidden_states=tuple(h[0].float().cpu() for h in out.hidden_states) if hidden_states else None,
        attentions=tuple(a[0].float().cpu() for a in out.attentions) if attentions else None,
    )


def input_embeddings(runtime: GemmaRuntime, input_ids: torch.Tensor) -> torch.Tensor:
    """[..., T] ids -> [..., T, D] embeddings, scaled by sqrt(D) as every Gemma's embedding layer does."""
    with torch.no_grad():
        return runtime.model.get_input_embeddings()(input_ids.to(runtime.device))


def embedding_gradients(
    runtime: GemmaRuntime,
    input_ids: torch.Tensor,
    target: Callable[[torch.Tensor], torch.Tensor],
    *,
    positions: torch.Tensor | None = None,
) -> EmbeddingGradients:
    """Gradient of ``target(logits)`` with respect to the input embeddings of ``input_ids`` [T].

    ``target`` gets float32 logits [T', V] and returns a scalar; ``positions`` (1-D LongTensor) limits the logits
    computed to those positions (T' = len(positions)), which saves memory for long inputs and a 262k vocabulary.
    """
    ids = _as_ids(runtime, input_ids)
    embeddings = input_embeddings(runtime, ids)[None]  # [1, T, D]
    values, gradients = batch_embedding_gradients(
        runtime, embeddings, lambda logits: target(logits[0])[None], positions=positions
    )
    return EmbeddingGradients(ids, embeddings[0].float().cpu(), gradients[0], float(values[0]))


def batch_embedding_gradients(
    runtime: GemmaRuntime,
    embeddings: torch.Tensor,
    target: Callable[[torch.Tensor], torch.Tensor],
    *,
    positions: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example gradients for a batch of embedding sequences (e.g. integrated-gradients steps).

    embeddings [B, T, D]; ``target`` maps float32 logits [B, T', V] to per-example scores [B].
    Returns (scores [B], gradients [B, T, D]), both float32 on the CPU. Examples are independent, so the
    gradient of the summed scores is each example's own gradient.
    """
    inputs = embeddings.detach().to(runtime.device).requires_grad_(True)
    keep = positions.to(runtime.device) if positions is not None else 0
    with torch.enable_grad(), runtime.lock:
        out = runtime.model(inputs_embeds=inputs, attention_mask=attention_mask, use_cache=False, logits_to_keep=keep)
        scores = target(out.logits.float())
        if scores.shape != (inputs.shape[0],):
            raise ConfigError(f"target must return one score per example, shape [{inputs.shape[0]}], got {tuple(scores.shape)}")
        (gradients,) = torch.autograd.grad(scores.sum(), inputs)
    return scores.detach().float().cpu(), gradients.float().cpu()


def sequence_logprob(logits: torch.Tensor, input_ids: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Sum of log p(token t | tokens < t) for t in [start, end): the score of a continuation span.

    logits [T, V] over the whole sequence, input_ids [T]; 1 <= start < end <= T.
    """
    if not 1 <= start < end <= len(input_ids):
        raise ConfigError(f"span [{start}, {end}) must lie within tokens 1..{len(input_ids)}")
    log_probs = torch.log_softmax(logits[start - 1 : end - 1].float(), dim=-1)  # [end - start, V]
    targets = input_ids[start:end].to(log_probs.device)
    return log_probs.gather(-1, targets[:, None]).sum()


def unembed(runtime: GemmaRuntime, hidden: torch.Tensor, *, normed: bool = False) -> torch.Tensor:
    """Project residual-stream states [..., D] to logits [..., V] (the logit lens): final RMSNorm unless
    ``normed``, the tied output embedding, and Gemma 2/3's final logit soft-capping."""
    model = runtime.model
    with torch.inference_mode(), runtime.lock:
        states = hidden.to(device=runtime.device, dtype=next(model.parameters()).dtype)
        if not normed:
            states = model.model.norm(states)
        logits = model.lm_head(states).float()
        cap = getattr(model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
    return logits.cpu()


def _as_ids(runtime: GemmaRuntime, text_or_ids: str | torch.Tensor) -> torch.Tensor:
    if isinstance(text_or_ids, str):
        if not text_or_ids:
            raise ConfigError("text must not be empty")
        return runtime.encode(text_or_ids)
    if not isinstance(text_or_ids, torch.Tensor) or text_or_ids.dim() != 1 or text_or_ids.numel() == 0:
        raise ConfigError("input ids must be a non-empty 1-D LongTensor [T]")
    return text_or_ids.long().cpu()


