"""Decoding: greedy or sampled, with a KV cache, stop sequences and streaming of text pieces.

Non-streaming generation is the streaming iterator run to the end, so both always produce the same text.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import torch

from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 128  # upper bound on generated tokens
    temperature: float = 0.0  # 0 = greedy; > 0 samples from softmax(logits / temperature)
    top_p: float = 1.0  # nucleus sampling: keep the smallest set of tokens with this much probability
    top_k: int = 0  # keep only the k most likely tokens; 0 = no limit
    seed: int | None = None  # sampling seed; the same seed and prompt give the same text
    stop: tuple[str, ...] = ()  # generation ends before the first of these strings

    def __post_init__(self) -> None:
        _check(isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1, "max_new_tokens",
               f"must be a whole number >= 1, got {self.max_new_tokens!r}")
        _check(isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and self.temperature >= 0,
               "temperature", f"must be a finite number >= 0, got {self.temperature!r}")
        _check(isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1, "top_p",
               f"must be in (0, 1], got {self.top_p!r}")
        _check(isinstance(self.top_k, int) and self.top_k >= 0, "top_k", f"must be a whole number >= 0, got {self.top_k!r}")
        _check(self.seed is None or isinstance(self.seed, int), "seed", f"must be a whole number, got {self.seed!r}")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        _check(all(isinstance(s, str) and s for s in stop), "stop", f"must be non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", stop)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _check(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"GenerationConfig.{field_name} {message}")


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: FinishReason  # "stop": <eos>, <end_of_turn> or a stop string; "length": max_new_tokens reached
    prompt_tokens: int
    completion_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class GenerationStream:
    """Iterate for text pieces; after the last one, ``result`` holds the whole outcome."""

    runtime: GemmaRuntime
    prompt_ids: torch.Tensor  # [T] with <bos>
    config: GenerationConfig
    trim: bool = False  # strip whitespace around the completion (streamed pieces never carry what is stripped)
    float_greedy: bool = False  # decode with a step that keeps the float model's greedy text (runtime.decode_step)
    result: GenerationResult | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        limit = getattr(self.runtime.model.config, "max_position_embeddings", None)
        needed = len(self.prompt_ids) + self.config.max_new_tokens
        if limit is not None and needed > limit:
            raise ConfigError(
                f"prompt ({len(self.prompt_ids)} tokens) plus max_new_tokens ({self.config.max_new_tokens}) "
                f"exceeds the model's context of {limit} tokens"
            )

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        generated: list[int] = []
        emitted = 0  # characters of the (trimmed) completion already yielded
        finish: FinishReason = "length"
        text = ""
        step = self.runtime.decode_step(float_greedy=self.float_greedy)
        for token_id in _decode_tokens(self.runtime, step, self.prompt_ids, self.config):
            if token_id in self.runtime.stop_token_ids:
                finish = "stop"
                break
            generated.append(token_id)
            text = self._visible(self.runtime.decode(generated))
            if text.endswith("\ufffd"):
                continue  # a multi-byte character is still incomplete
            cut = _first_stop(text, self.config.stop)
            if cut is not None:
                text, finish = text[:cut], "stop"
                break
            safe = len(text) - _pending_stop_prefix(text, self.config.stop)
            if self.trim:
                safe = len(text[:safe].rstrip())  # whitespace before a held stop prefix may yet be trimmed: hold it
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
        else:
            text = self._visible(self.runtime.decode(generated))
            cut = _first_stop(text, self.config.stop)
            if cut is not None:
                text, finish = text[:cut], "stop"
        text = text.removesuffix("\ufffd") if finish == "length" else text
        text = text.rstrip() if self.trim else text
        if len(text) > emitted:
            yield text[emitted:]
        self.result = GenerationResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=len(self.prompt_ids),
            completion_tokens=len(generated),
            seconds=time.perf_counter() - started,
        )

    def _visible(self, text: str) -> str:
        """The completion as callers see it: without leading whitespace when trimming."""
        return text.lstrip() if self.trim else text


def _decode_tokens(runtime: GemmaRuntime, step, prompt_ids: torch.Tensor, config: GenerationConfig) -> Iterator[int]:
    """Yield one new token id per ``step`` (the float model's forward, or a faster path of
    ``shieldkit.model.decoding``), reusing the KV cache."""
    generator = None
    if not config.greedy:
        generator = torch.Generator(device="cpu")
        generator.manual_seed(config.seed if config.seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
    step_ids = prompt_ids[None].to(runtime.device)  # [1, T] for the prompt, then [1, 1]
    cache = None
    with torch.inference_mode():
        for _ in range(config.max_new_tokens):
            with runtime.lock:
                logits, cache = step(step_ids, cache)  # logits [V] float32 on the CPU
            token_id = _pick(logits, config, generator)
            yield token_id
            step_ids = torch.tensor([[token_id]], device=runtime.device)


def _pick(logits: torch.Tensor, config: GenerationConfig, generator: torch.Generator | None) -> int:
    if config.greedy:
        return int(torch.argmax(logits))
    logits = logits / config.temperature
    if config.top_k:
        kth = torch.topk(logits, min(config.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= config.top_p  # keeps the token that crosses top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    positions = [pos for pos in (text.find(s) for s in stops) if pos >= 0]
    return min(positions) if positions else None


def _pending_stop_prefix(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that could still grow into a stop string (held back, not yielded)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
