"""The LoRA-on-Gemma safety classifier: one policy, scored from mean-pooled mid-depth states.

How a text is read (shapes: B texts, T tokens, D hidden size):

    ids = <bos> + text tokens (windows of ``max_tokens``; long texts are scored window by window, max wins)
    h   = Gemma layers [0, start) of the runtime's own model          # frozen trunk, shared by all policies
    h   = Gemma layers [start, readout) with this policy's LoRA        # a structural copy sharing the weights
    z   = mean(h over the text tokens) . w + b                         # [B] raw log-odds
    p   = sigmoid(slope * z + intercept)                               # calibrated on cross-validation folds

Nothing above ``readout`` runs and no vocabulary logits are computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shieldkit.classifiers import stack
from shieldkit.classifiers.base import GRADIENTS, ClassifierInput
from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel

    from shieldkit.model.runtime import GemmaRuntime

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the raw log-odds z, fitted on held-out cross-validation scores."""

    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.slope * z.float() + self.intercept)


@dataclass(frozen=True)
class ClassifierCard:
    """Everything about a classifier except its weights; saved as classifier.json."""

    policy: str
    description: str
    threshold: float  # flagged when the calibrated probability >= threshold
    calibration: Calibration
    start: int  # first LoRA layer: layers [0, start) are the shared frozen trunk
    readout: int  # states are pooled after this many layers
    max_tokens: int  # text tokens per window
    base_model: dict[str, Any]  # name, fingerprint, layers, hidden size of the Gemma it was trained on
    training: dict[str, Any] = field(default_factory=dict)  # TrainingConfig as a dict
    data: dict[str, Any] = field(default_factory=dict)  # hash, n, positives, source, duplicates dropped
    metrics: dict[str, Any] = field(default_factory=dict)  # cross-validated metrics, loss, seconds
    labels: tuple[str, str] = ("allowed", "violates")
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        values["calibration"] = dict(self.calibration.__dict__)
        values["labels"] = list(self.labels)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClassifierCard:
        values = dict(values)
        values["calibration"] = Calibration(**values.get("calibration", {}))
        values["labels"] = tuple(values.get("labels", ("allowed", "violates")))
        return cls(**values)


class PolicyHead(nn.Module):
    """pooled [B, D] -> raw log-odds z [B]."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(hidden_size))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled.float() @ self.weight + self.bias


def attach_lora(runtime: GemmaRuntime, config: LoraConfig, seed: int = 0) -> PeftModel:
    """A LoRA-wrapped structural copy of the runtime's model (weights shared; LoRA init seeded, global RNG untouched)."""
    import warnings

    from peft import get_peft_model

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' is_gradient_checkpointing rename, via peft
        torch.manual_seed(seed)
        return get_peft_model(stack.shared_copy(runtime.model), config)


def text_windows(runtime: GemmaRuntime, text: str, max_tokens: int) -> list[torch.Tensor]:
    """<bos> + up to ``max_tokens`` text tokens per window, windows overlapping by a quarter: [T] each."""
    if not isinstance(text, str):
        raise ConfigError(f"texts must be strings, got {type(text).__name__}")
    tokens = runtime.tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = [runtime.tokenizer.bos_token_id]
    stride = max(1, max_tokens * 3 // 4)
    starts = range(0, max(1, len(tokens) - max_tokens + stride), stride)
    return [torch.tensor(bos + tokens[s : s + max_tokens], dtype=torch.long) for s in starts]


def pad_batch(sequences: Sequence[torch.Tensor], pad_value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad [T_i, ...] tensors into [B, T, ...] plus the mask [B, T] (1 = real)."""
    longest = max(len(s) for s in sequences)
    out = sequences[0].new_full((len(sequences), longest, *sequences[0].shape[1:]), pad_value)
    mask = torch.zeros(len(sequences), longest, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return out, mask


class GemmaClassifier:
    """A trained policy classifier on a shared GemmaRuntime; implements ExplainableClassifier."""

    def __init__(self, runtime: GemmaRuntime, card: ClassifierCard, network: PeftModel, head: PolicyHead) -> None:
        self._runtime = runtime
        self.card = card
        self.network = network.eval().requires_grad_(False)  # gradients go to inputs only, never to the weights
        self.head = head.eval().requires_grad_(False)
        for param in (*self.network.parameters(), *self.head.parameters()):
            param.grad = None  # nothing left over from training

    # --- SafetyClassifier --------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.card.policy

    @property
    def description(self) -> str:
        return self.card.description

    @property
    def threshold(self) -> float:
        return self.card.threshold

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({GRADIENTS})

    @property
    def runtime(self) -> GemmaRuntime:
        return self._runtime

    def score(self, texts: Sequence[str]) -> list[float]:
        from shieldkit.classifiers.bank import score_texts

        return score_texts(self._runtime, {self.name: self}, texts)[self.name]

    def with_threshold(self, threshold: float) -> GemmaClassifier:
        """The same classifier with another decision threshold (weights shared)."""
        if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0 or math.isnan(threshold):
            raise ConfigError(f"threshold must be a probability in [0, 1], got {threshold!r}")
        return GemmaClassifier(self._runtime, replace(self.card, threshold=float(threshold)), self.network, self.head)

    # --- the pieces the bank and the explainers run ------------------------------------------------------------

    def top_logodds(self, hidden: torch.Tensor, context: stack.StackContext, mask: torch.Tensor) -> torch.Tensor:
        """Trunk output hidden [B, T, D] (after layer ``start``) -> raw log-odds z [B]."""
        top = stack.run_layers(self.network, hidden, context, self.card.start, self.card.readout)
        return self.head(stack.mean_pool(top, mask))

    # --- ExplainableClassifier ---------------------------------------------------------------------------------

    def prepare(self, text: str) -> ClassifierInput:
        """The first window of ``text`` (what the classifier reads for texts up to ``max_tokens`` tokens)."""
        if not isinstance(text, str):
            raise ConfigError(f"text must be a string, got {type(text).__name__}")
        encoded = self._runtime.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        tokens = encoded["input_ids"][: self.card.max_tokens]
        offsets = [tuple(span) for span in encoded["offset_mapping"][: self.card.max_tokens]]
        ids = torch.tensor([self._runtime.tokenizer.bos_token_id, *tokens], dtype=torch.long)
        return ClassifierInput(input_ids=ids, text_start=1, text_end=len(ids), offsets=offsets)

    def logits_from_embeddings(self, embeddings: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """embeddings [B, T, D] (scaled, as layer 0 sees them; <bos> first) -> [B, 2] (allowed, violates).

        logits[:, 1] - logits[:, 0] is the raw log-odds z; differentiable with respect to ``embeddings``.
        """
        if embeddings.dim() != 3:
            raise ConfigError(f"embeddings must be [B, T, D], got shape {tuple(embeddings.shape)}")
        runtime = self._runtime
        mask = attention_mask if attention_mask is not None else torch.ones(embeddings.shape[:2], dtype=torch.long)
        with runtime.lock:
            hidden = embeddings.to(runtime.device)
            context = stack.build_context(runtime.model, hidden, mask)
            hidden = stack.run_layers(runtime.model, hidden, context, 0, self.card.start)
            z = self.top_logodds(hidden, context, mask)
        return torch.stack([-z / 2, z / 2], dim=-1)

    def calibrated(self, z: torch.Tensor) -> torch.Tensor:
        return self.card.calibration.apply(z)

    def save(self, folder) -> None:
        from shieldkit.classifiers.storage import save_classifier

        save_classifier(self, folder)

    def __repr__(self) -> str:
        return f"GemmaClassifier({self.name!r}, threshold={self.threshold:.3f}, layers {self.card.start}-{self.card.readout})"
