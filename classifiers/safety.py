"""The shared safety model: one LoRA-adapted Gemma trunk read out by one small head per policy.

How a text is read (shapes: W windows, T tokens, D hidden size, P heads):

    ids    = <bos> + text tokens (windows of ``max_tokens``, overlapping by a quarter; max over windows wins)
    h      = Gemma layers [0, start) of the runtime's own model             # frozen
    h      = Gemma layers [start, readout) with the safety LoRA             # a structural copy sharing the weights
    pooled = mean(h over the text tokens)                                   # [W, D]
    z      = pooled @ W_p + b_p for every head p                            # [W, P] raw log-odds
    p      = sigmoid(slope_p * z + intercept_p)                             # Platt, fitted on a held-out split

Every default policy and every custom policy trained with ``shieldkit train`` is a head on the same pooled state,
so a bank scores all of them with one pass of ``readout`` layers per window. Nothing above ``readout`` runs and no
vocabulary logits are computed.

Scoring runs in the runtime's ``classifier_precision`` (``SHIELDKIT_CLASSIFIER_PRECISION``): float32, the network
above, or bfloat16 / mixed / int8, a merged copy of layers [0, readout) with its linear maps in that precision
(``scoring_layers.py``), built on the first such score and kept on the SafetyModel. Training, calibration, few-shot
heads and the debugger's gradients always use float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from shieldkit.classifiers import stack
from shieldkit.classifiers.base import GRADIENTS, ClassifierInput
from shieldkit.classifiers.gemma import Calibration, PolicyHead, pad_batch, text_windows
from shieldkit.classifiers.scoring_layers import ScoringLayers
from shieldkit.errors import ConfigError
from shieldkit.model.quantize import SCORING_PRECISIONS, resolve_classifier_precision

if TYPE_CHECKING:
    from peft import PeftModel

    from shieldkit.model.runtime import GemmaRuntime

FORMAT_VERSION = 2
MAX_BATCH = 16  # windows per forward
MAX_BATCH_TOKENS = 4096  # padded tokens per forward


@dataclass(frozen=True)
class HeadCard:
    """Everything about one policy head except its weights."""

    policy: str
    description: str
    threshold: float  # flagged when the calibrated probability >= threshold
    calibration: Calibration
    safety_model: str  # fingerprint of the safety model whose pooled state the head reads
    metrics: dict[str, Any] = field(default_factory=dict)  # held-out metrics and how the threshold was chosen
    training: dict[str, Any] = field(default_factory=dict)  # settings the head was fitted with
    data: dict[str, Any] = field(default_factory=dict)  # hash, n, positives, source
    labels: tuple[str, str] = ("allowed", "violates")
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        for name in ("policy", "safety_model"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"HeadCard.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if not _finite(self.threshold) or not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"HeadCard.threshold must be a probability in [0, 1], got {self.threshold!r}")
        for name in ("slope", "intercept"):
            if not _finite(getattr(self.calibration, name, None)):
                raise ConfigError(f"HeadCard.calibration.{name} must be a finite number, "
                                  f"got {getattr(self.calibration, name, None)!r}")

    def to_dict(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        values["calibration"] = dict(self.calibration.__dict__)
        values["labels"] = list(self.labels)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HeadCard:
        values = dict(values)
        values["calibration"] = Calibration(**values.get("calibration", {}))
        values["labels"] = tuple(values.get("labels", ("allowed", "violates")))
        return cls(**values)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SafetyCard:
    """The shared part: which layers, which base model, how it was trained."""

    start: int  # first adapted layer: layers [0, start) are the frozen trunk
    readout: int  # states are pooled after this many layers
    max_tokens: int  # text tokens per window
    base_model: dict[str, Any]  # name, fingerprint, layers, hidden size of the Gemma it was trained on
    fingerprint: str  # sha256 of the saved adapter: the identity heads refer to
    training: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # corpus fingerprint and counts
    metrics: dict[str, Any] = field(default_factory=dict)  # loss, seconds
    format_version: int = FORMAT_VERSION


class SafetyModel:
    """The adapted trunk; ``pooled`` is the state every head reads."""

    def __init__(self, runtime: GemmaRuntime, card: SafetyCard, network: PeftModel) -> None:
        self.runtime = runtime
        self.card = card
        self.network = network.eval().requires_grad_(False)  # gradients go to inputs only, never to the weights
        for param in self.network.parameters():
            param.grad = None  # nothing left over from training
        self._copies: dict[str, Any] = {}  # precision -> scoring_layers.ScoringLayers, built on first use

    @property
    def precision(self) -> str:
        """How ``score_heads`` computes pooled states: the runtime's ``classifier_precision``."""
        return self.runtime.info.classifier_precision

    def scoring_layers(self, precision: str):
        """The bfloat16, mixed or int8 scoring copy of layers [0, readout), built once per precision (under the runtime's
        lock) and kept. Refused (ConfigError naming the setting) where the runtime's model cannot run it."""
        with self.runtime.lock:
            if precision not in self._copies:  # checked once, when the copy is built
                resolve_classifier_precision(precision, self.runtime.model)
                self._copies[precision] = ScoringLayers(self, precision)
            return self._copies[precision]

    def pooled_from_trunk(self, hidden: torch.Tensor, context: stack.StackContext, mask: torch.Tensor) -> torch.Tensor:
        """Trunk output hidden [B, T, D] (entering layer ``start``) -> pooled state [B, D]."""
        top = stack.run_layers(self.network, hidden, context, self.card.start, self.card.readout)
        return stack.mean_pool(top, mask)

    def pooled_from_embeddings(self, embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """embeddings [B, T, D] (scaled, as layer 0 sees them) -> pooled [B, D]; differentiable."""
        context = stack.build_context(self.runtime.model, embeddings, mask)
        hidden = stack.run_layers(self.runtime.model, embeddings, context, 0, self.card.start)
        return self.pooled_from_trunk(hidden, context, mask)

    def windows(self, texts: Sequence[str], first_only: bool = False) -> list[tuple[int, torch.Tensor]]:
        """(text index, ids [T]) for every window of every text (or only each text's first)."""
        if isinstance(texts, str):
            raise ConfigError("texts must be a list of strings, not one string")
        out = []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ConfigError(f"texts[{index}] must be a string, got {type(text).__name__}")
            windows = text_windows(self.runtime, text, self.card.max_tokens)
            out += [(index, ids) for ids in (windows[:1] if first_only else windows)]
        return out

    def pooled(self, texts: Sequence[str], first_only: bool = False,
               precision: str = "float32") -> tuple[torch.Tensor, list[int]]:
        """Pooled states [W, D] of every window (or each text's first) and the text each window belongs to.

        ``precision``: float32 (the reference; training and calibration use it), bfloat16, mixed or int8
        (``scoring_layers``). Padding is masked out, so a text's state depends on what else is in the batch only by
        rounding; int8 quantizes each batch's activations with one scale, so there it depends a little more.
        """
        if precision not in SCORING_PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(SCORING_PRECISIONS)}, got {precision!r}")
        fast = None if precision == "float32" else self.scoring_layers(precision)
        windows = self.windows(texts, first_only)
        states = [None] * len(windows)
        for batch in _batches(windows):
            ids, mask = pad_batch([windows[i][1] for i in batch], pad_value=self.runtime.tokenizer.pad_token_id or 0)
            with torch.inference_mode(), self.runtime.lock:
                hidden = self.runtime.model.get_input_embeddings()(ids.to(self.runtime.device))  # [B, T, D]
                if fast is None:
                    pooled = self.pooled_from_embeddings(hidden, mask).float().cpu()  # [B, D]
                else:
                    context = stack.build_context(self.runtime.model, hidden, mask)
                    pooled = stack.mean_pool(fast(hidden, context), mask).float().cpu()  # [B, D]
            for row, index in enumerate(batch):
                states[index] = pooled[row]
        if not states:
            return torch.zeros(0, self.runtime.info.hidden_size), []
        return torch.stack(states), [owner for owner, _ in windows]


def _batches(windows: list[tuple[int, torch.Tensor]]) -> list[list[int]]:
    """Window indices grouped by length (less padding), at most MAX_BATCH windows / MAX_BATCH_TOKENS tokens."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i][1]))
    batches, current = [], []
    for index in order:
        length = len(windows[index][1])
        if current and (len(current) == MAX_BATCH or length * (len(current) + 1) > MAX_BATCH_TOKENS):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def score_heads(safety: SafetyModel, heads: Mapping[str, HeadClassifier], texts: Sequence[str],
                precision: str | None = None) -> dict[str, list[float]]:
    """{policy: [calibrated probability per text]}: one adapted pass per window, then every head.
    ``precision``: float32, bfloat16, mixed or int8; None: the safety model's (the runtime's ``classifier_precision``)."""
    texts = list(texts) if not isinstance(texts, str) else texts
    pooled, owners = safety.pooled(texts, precision=precision or safety.precision)
    return score_pooled(heads, pooled, owners, len(texts))


def score_pooled(heads: Mapping[str, HeadClassifier], pooled: torch.Tensor, owners: Sequence[int],
                 n_texts: int) -> dict[str, list[float]]:
    """Heads applied to pooled window states [W, D]; a text's score is the highest over its windows."""
    scores = {name: [0.0] * n_texts for name in heads}
    for name, classifier in heads.items():
        probabilities = classifier.calibrated(classifier.head(pooled)).tolist() if len(owners) else []
        column = scores[name]
        for owner, value in zip(owners, probabilities):
            column[owner] = max(column[owner], value)
    return scores


class HeadClassifier:
    """One policy: a head on a SafetyModel. Implements SafetyClassifier and ExplainableClassifier."""

    def __init__(self, safety: SafetyModel, card: HeadCard, head: PolicyHead) -> None:
        if card.safety_model != safety.card.fingerprint:
            raise ConfigError(
                f"classifier {card.policy!r} was fitted on safety model {card.safety_model[:12]}, but the loaded "
                f"safety model is {safety.card.fingerprint[:12]}; retrain it with `shieldkit train`"
            )
        self.safety = safety
        self.card = card
        self.head = head.eval().requires_grad_(False)
        for param in self.head.parameters():
            param.grad = None

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
        return self.safety.runtime

    def score(self, texts: Sequence[str]) -> list[float]:
        return score_heads(self.safety, {self.name: self}, texts)[self.name]

    def calibrated(self, z: torch.Tensor) -> torch.Tensor:
        return self.card.calibration.apply(z)

    def with_threshold(self, threshold: float) -> HeadClassifier:
        """The same classifier with another decision threshold (weights shared)."""
        if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0 or math.isnan(threshold):
            raise ConfigError(f"threshold must be a probability in [0, 1], got {threshold!r}")
        return HeadClassifier(self.safety, replace(self.card, threshold=float(threshold)), self.head)

    def prepare(self, text: str) -> ClassifierInput:
        """The first window of ``text`` (what the classifier reads for texts up to ``max_tokens`` tokens)."""
        if not isinstance(text, str):
            raise ConfigError(f"text must be a string, got {type(text).__name__}")
        runtime, limit = self.runtime, self.safety.card.max_tokens
        encoded = runtime.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        tokens = encoded["input_ids"][:limit]
        offsets = [tuple(span) for span in encoded["offset_mapping"][:limit]]
        ids = torch.tensor([runtime.tokenizer.bos_token_id, *tokens], dtype=torch.long)
        return ClassifierInput(input_ids=ids, text_start=1, text_end=len(ids), offsets=offsets)

    def logits_from_embeddings(self, embeddings: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """embeddings [B, T, D] (<bos> first) -> [B, 2] (allowed, violates); logits[:, 1] - logits[:, 0] = z."""
        if embeddings.dim() != 3:
            raise ConfigError(f"embeddings must be [B, T, D], got shape {tuple(embeddings.shape)}")
        mask = attention_mask if attention_mask is not None else torch.ones(embeddings.shape[:2], dtype=torch.long)
        with self.runtime.lock:
            z = self.head(self.safety.pooled_from_embeddings(embeddings.to(self.runtime.device), mask))
        return torch.stack([-z / 2, z / 2], dim=-1)

    def save(self, folder) -> None:
        from shieldkit.classifiers.storage import save_head

        save_head(self, folder)

    def __repr__(self) -> str:
        return f"HeadClassifier({self.name!r}, threshold={self.threshold:.3f}, safety model {self.card.safety_model[:8]})"
