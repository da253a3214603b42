"""Target (b): a safety classifier's decision, through the ``ExplainableClassifier`` protocol.

Three scores, each on a named scale:

- ``log_odds`` (the default; it does not saturate): the calibrated violation log-odds, logit(p) of the probability p
  the classifier reports (``decide``), so the explained number and the one shown beside it agree.
- ``probability``: that calibrated probability p itself.
- ``raw_log_odds``: logit[violates] − logit[allowed] before calibration (the head's own output).

A classifier with a ``calibrated(z) -> probability`` method (Platt scaling of the raw log-odds z, as the shipped
heads have) is read as the affine map z ↦ a·z + b it applies before its sigmoid; one without reports
softmax(logits)[violates], so its calibrated and raw scales coincide. Only the tokens of the text itself are
attributed; the classifier's prompt template is held fixed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import torch

from shieldkit.classifiers.base import GRADIENTS, ExplainableClassifier, decide
from shieldkit.debugger.targets.language_model import quote
from shieldkit.debugger.tokens import build_document
from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from shieldkit.classifiers.base import SafetyClassifier
    from shieldkit.model.runtime import GemmaRuntime

ClassifierScore = Literal["log_odds", "probability", "raw_log_odds"]
CLASSIFIER_SCORES: dict[str, str] = {
    "log_odds": "calibrated violation log-odds",
    "probability": "calibrated violation probability",
    "raw_log_odds": "raw log-odds (before calibration)",
}


@runtime_checkable
class Calibrated(Protocol):
    def calibrated(self, z: torch.Tensor) -> torch.Tensor:
        """Raw log-odds z [B] -> the calibrated violation probability [B] the classifier reports."""


def calibration_map(classifier: SafetyClassifier) -> tuple[float, float]:
    """(a, b) with reported probability = sigmoid(a·z + b) for raw log-odds z; (1, 0) without a calibration."""
    if not isinstance(classifier, Calibrated):
        return 1.0, 0.0
    probe = torch.tensor([0.0, 1.0, -2.0, 3.0])
    p = classifier.calibrated(probe).double().clamp(1e-12, 1 - 1e-12)
    logits = torch.log(p) - torch.log1p(-p)
    b = float(logits[0])
    a = float(logits[1]) - b
    if not (math.isfinite(a) and a > 0) or not torch.allclose(logits, a * probe.double() + b, atol=1e-3, rtol=1e-4):
        raise ConfigError(f"classifier {classifier.name!r}: its calibration is not Platt scaling (sigmoid of a·z + b); "
                          "explain it on score='raw_log_odds'")
    return a, b


def explainable(classifier: SafetyClassifier) -> bool:
    """A classifier's saliency is offered only when it declares GRADIENTS and implements the protocol."""
    return GRADIENTS in classifier.capabilities and isinstance(classifier, ExplainableClassifier)


class ClassifierTarget:
    kind = "classifier"

    def __init__(self, classifier: SafetyClassifier, text: str, score: ClassifierScore = "log_odds") -> None:
        if not explainable(classifier):
            raise ConfigError(
                f"classifier {classifier.name!r} does not declare the {GRADIENTS!r} capability: it can be scored, not explained"
            )
        if score not in CLASSIFIER_SCORES:
            raise ConfigError(f"score must be one of {', '.join(CLASSIFIER_SCORES)}, got {score!r}")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("the text to classify must not be empty")
        self.classifier: ExplainableClassifier = classifier
        self.text = text
        self.score_kind = score
        self.calibration = None if score == "raw_log_odds" else calibration_map(classifier)
        prepared = classifier.prepare(text)
        ids = prepared.input_ids.long().cpu()
        if not 0 <= prepared.text_start <= prepared.text_end <= len(ids):
            raise ConfigError(f"classifier {classifier.name!r} placed the text at tokens "
                              f"[{prepared.text_start}, {prepared.text_end}) of {len(ids)}")
        tokenizer = classifier.runtime.tokenizer
        self._document = build_document(tokenizer, [
            (ids[: prepared.text_start].tolist(), None),
            (ids[prepared.text_start : prepared.text_end].tolist(), text),
            (ids[prepared.text_end :].tolist(), None),
        ])
        self._decision = None

    @property
    def runtime(self) -> GemmaRuntime:
        return self.classifier.runtime

    @property
    def document(self):
        return self._document

    @property
    def description(self) -> str:
        return f"{self.classifier.name}: {CLASSIFIER_SCORES[self.score_kind]} of {quote(self.text, 40)}"

    @property
    def highlight(self) -> None:
        return None

    @property
    def influence_end(self) -> int:
        return len(self._document)

    def _from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 2 or logits.shape[-1] != 2:
            raise ConfigError(f"classifier {self.classifier.name!r} returned logits of shape {tuple(logits.shape)}, "
                              "expected [B, 2] (allowed, violates)")
        z = logits[:, 1].float() - logits[:, 0].float()
        if self.score_kind == "raw_log_odds":
            return z
        a, b = self.calibration
        calibrated = a * z + b
        return calibrated if self.score_kind == "log_odds" else torch.sigmoid(calibrated)

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self.runtime.lock:
            return self._from_logits(self.classifier.logits_from_embeddings(embeddings.to(self.runtime.device))).cpu()

    def scores_and_gradients(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = embeddings.detach().to(self.runtime.device).requires_grad_(True)
        with torch.enable_grad(), self.runtime.lock:
            values = self._from_logits(self.classifier.logits_from_embeddings(inputs))
            if not values.requires_grad:
                raise ConfigError(f"classifier {self.classifier.name!r} returned logits without gradients; "
                                  "logits_from_embeddings must be differentiable")
            (gradients,) = torch.autograd.grad(values.sum(), inputs)
        return values.detach().float().cpu(), gradients.float().cpu()

    def decision(self) -> dict[str, Any]:
        """The classifier's own (calibrated) score and decision for the text."""
        if self._decision is None:
            made = decide(self.classifier, [self.text])[0]
            self._decision = {"policy": made.policy, "score": made.score, "threshold": made.threshold, "flagged": made.flagged}
        return self._decision

    def details(self) -> dict[str, Any]:
        calibration = None if self.calibration is None else dict(zip(("slope", "intercept"), self.calibration))
        return {"classifier": self.classifier.name, "score": self.score_kind, "scale": CLASSIFIER_SCORES[self.score_kind],
                "calibration": calibration, "decision": self.decision()}
