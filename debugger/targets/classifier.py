"""Target (b): a safety classifier's decision, through the ``ExplainableClassifier`` protocol.

Two scores: ``log_odds`` (contrastive, "violates vs allowed": logit[violates] − logit[allowed]; the default, since
it does not saturate) and ``probability`` (softmax(logits)[violates], the uncalibrated violation probability).
Only the tokens of the text itself are attributed; the classifier's prompt template is held fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch

from shieldkit.classifiers.base import GRADIENTS, ExplainableClassifier, decide
from shieldkit.debugger.targets.language_model import quote
from shieldkit.debugger.tokens import build_document
from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from shieldkit.classifiers.base import SafetyClassifier
    from shieldkit.model.runtime import GemmaRuntime

ClassifierScore = Literal["log_odds", "probability"]
CLASSIFIER_SCORES: dict[str, str] = {
    "log_odds": "violation log-odds (violates vs allowed)",
    "probability": "violation probability",
}


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
        logits = logits.float()
        if self.score_kind == "probability":
            return torch.softmax(logits, dim=-1)[:, 1]
        return logits[:, 1] - logits[:, 0]

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
        return {"classifier": self.classifier.name, "score": self.score_kind, "decision": self.decision()}
