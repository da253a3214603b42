"""A real, differentiable (untrained) classifier on the tiny runtime, for tests: it implements
``ExplainableClassifier`` by mean-pooling the hidden states of ``runtime.model`` over a prompt template and
applying a fixed linear head. It stands in for shieldkit.classifiers until that part lands."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from shieldkit.classifiers.base import GRADIENTS, ClassifierInput
from shieldkit.model.internals import input_embeddings

PREFIX = "Does this text break the policy?\nText: "
SUFFIX = "\nAnswer:"


class ToyClassifier:
    def __init__(self, runtime, name: str = "toy", threshold: float = 0.5, seed: int = 0, gradients: bool = True) -> None:
        self._runtime = runtime
        self._name = name
        self._threshold = threshold
        self._capabilities = frozenset({GRADIENTS}) if gradients else frozenset()
        generator = torch.Generator().manual_seed(seed)
        hidden = runtime.info.hidden_size
        self.head = torch.randn(hidden, 2, generator=generator) * 4 / hidden**0.5  # [D, 2]

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return "An untrained test classifier: mean-pooled Gemma states and a fixed random linear head."

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def capabilities(self) -> frozenset[str]:
        return self._capabilities

    @property
    def runtime(self):
        return self._runtime

    def prepare(self, text: str) -> ClassifierInput:
        tokenizer = self._runtime.tokenizer
        prefix = self._runtime.encode(PREFIX)  # with <bos>
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        suffix = self._runtime.encode(SUFFIX, add_bos=False)
        body = torch.tensor(encoded["input_ids"], dtype=torch.long)
        ids = torch.cat([prefix, body, suffix])
        start = len(prefix)
        return ClassifierInput(ids, start, start + len(body), [tuple(o) for o in encoded["offset_mapping"]])

    def logits_from_embeddings(self, embeddings: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self._runtime.model.model(inputs_embeds=embeddings, attention_mask=attention_mask, use_cache=False)
        pooled = out.last_hidden_state.mean(dim=1)  # [B, D]
        return pooled @ self.head.to(pooled)  # [B, 2]

    def score(self, texts: Sequence[str]) -> list[float]:
        scores = []
        with torch.inference_mode(), self._runtime.lock:
            for text in texts:
                embeddings = input_embeddings(self._runtime, self.prepare(text).input_ids)[None]
                scores.append(float(torch.softmax(self.logits_from_embeddings(embeddings), dim=-1)[0, 1]))
        return scores
