"""Many policies scored together: one trunk forward per text, then only each policy's top layers.

Cost per text window, in decoder layers: ``max(start) + sum(readout - start)`` instead of ``sum(readout)`` for
separate classifiers (and far from a full forward: nothing above the readout layer or in the 262k-row output
projection runs). ``bench/classifiers.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from shieldkit.classifiers import stack
from shieldkit.classifiers.gemma import GemmaClassifier, pad_batch, text_windows
from shieldkit.errors import ConfigError

MAX_BATCH = 16  # windows per forward
MAX_BATCH_TOKENS = 4096  # padded tokens per forward


def score_texts(
    runtime, classifiers: Mapping[str, GemmaClassifier], texts: Sequence[str]
) -> dict[str, list[float]]:
    """{policy: [calibrated probability per text]}; a text's score is the highest over its windows."""
    if isinstance(texts, str):
        raise ConfigError("texts must be a list of strings, not one string")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ConfigError(f"texts[{index}] must be a string, got {type(text).__name__}")
    scores = {name: [0.0] * len(texts) for name in classifiers}
    groups: dict[int, list[GemmaClassifier]] = {}
    for classifier in classifiers.values():
        groups.setdefault(classifier.card.max_tokens, []).append(classifier)
    for max_tokens, members in groups.items():
        windows = [(i, ids) for i, text in enumerate(texts) for ids in text_windows(runtime, text, max_tokens)]
        for batch in _batches(windows):
            owners = [owner for owner, _ in batch]
            probabilities = _score_batch(runtime, members, [ids for _, ids in batch])
            for classifier, values in zip(members, probabilities):
                column = scores[classifier.name]
                for owner, value in zip(owners, values.tolist()):
                    column[owner] = max(column[owner], value)
    return scores


def _batches(windows: list[tuple[int, torch.Tensor]]) -> list[list[tuple[int, torch.Tensor]]]:
    ordered = sorted(windows, key=lambda item: len(item[1]))
    batches, current = [], []
    for item in ordered:
        if current and (len(current) == MAX_BATCH or len(item[1]) * (len(current) + 1) > MAX_BATCH_TOKENS):
            batches.append(current)
            current = []
        current.append(item)
    if current:
        batches.append(current)
    return batches


def _score_batch(runtime, members: Sequence[GemmaClassifier], ids: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Trunk once (deepening to each distinct start), then every member's top layers: [per member: [B]]."""
    input_ids, mask = pad_batch(ids, pad_value=runtime.tokenizer.pad_token_id or 0)
    starts = sorted({member.card.start for member in members})
    with torch.inference_mode(), runtime.lock:
        hidden = runtime.model.get_input_embeddings()(input_ids.to(runtime.device))
        context = stack.build_context(runtime.model, hidden, mask)
        trunk: dict[int, torch.Tensor] = {}
        done = 0
        for start in starts:
            hidden = stack.run_layers(runtime.model, hidden, context, done, start)
            trunk[start], done = hidden, start
        return [member.calibrated(member.top_logodds(trunk[member.card.start], context, mask)).cpu() for member in members]


class GemmaBank:
    """Implements ClassifierBank over GemmaClassifiers that share one runtime."""

    def __init__(self, runtime, classifiers: Mapping[str, GemmaClassifier]) -> None:
        if not classifiers:
            raise ConfigError("a classifier bank needs at least one classifier")
        for name, classifier in classifiers.items():
            if classifier.runtime is not runtime:
                raise ConfigError(f"classifier {name!r} runs on another runtime; a bank shares one base model")
        self.runtime = runtime
        self._classifiers = dict(classifiers)

    @property
    def classifiers(self) -> Mapping[str, GemmaClassifier]:
        return dict(self._classifiers)

    def score(self, texts: Sequence[str], policies: Sequence[str] | None = None) -> dict[str, list[float]]:
        names = list(self._classifiers) if policies is None else list(policies)
        unknown = [name for name in names if name not in self._classifiers]
        if unknown:
            raise ConfigError(f"unknown policy {unknown[0]!r}; this bank has: {', '.join(self._classifiers)}")
        return score_texts(self.runtime, {name: self._classifiers[name] for name in names}, texts)

    def __repr__(self) -> str:
        return f"GemmaBank({', '.join(self._classifiers)})"
