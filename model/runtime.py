"""The Gemma runtime: loads a model once and serves generation and internals to the rest of the toolkit."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shieldkit.errors import ConfigError, ModelSourceError
from shieldkit.model.settings import EMBEDDED, ModelSettings
from shieldkit.model.source import ModelSource, resolve_source

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from shieldkit.model.generation import GenerationConfig, GenerationResult, GenerationStream
    from shieldkit.model.internals import EmbeddingGradients, ForwardOutput


@dataclass(frozen=True)
class ModelInfo:
    name: str  # human-readable source name
    source_kind: str  # embedded | gguf | hf | tiny
    source_path: str | None
    architecture: str  # model_type from the checkpoint
    fingerprint: str  # sha256 of the source weights; classifiers record it to refuse a different base
    cache_path: str | None  # converted safetensors folder, for GGUF sources
    cache_event: str  # hit | built | rebuilt (<reason>) | none (loaded without the cache)
    parameters: int
    dtype: str
    device: str
    num_layers: int
    num_heads: int
    hidden_size: int
    vocab_size: int
    load_seconds: float
    decode: str = "reference"  # how generation decodes: reference | int8-head | int8 | llama-cpp (shieldkit.model.decoding)
    classifier_precision: str = "float32"  # how the classifiers score: float32 | bfloat16 | mixed | int8
    chat_format: str = "turns"  # how chat messages are rendered: turns | transcript (shieldkit.model.chat)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GemmaRuntime:
    """A loaded Gemma with its tokenizer.

    Thread safety: ``lock`` guards the model. Anything that changes model state (LoRA adapters, the attention
    implementation) or runs a forward pass holds it; generation takes it per decoding step, so several callers
    interleave instead of queueing behind a whole generation.

    ``decode``, ``chat_format`` and ``classifier_precision`` are the settings of the same names (resolved and
    checked here); the int8 decoding copy is built on the first generation, so a process that only classifies never
    pays for it (and the classifiers' scoring copy on the first score in another precision than float32).
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, info: ModelInfo, *,
                 decode: str = "auto", chat_format: str = "auto", classifier_precision: str = "float32",
                 gguf: Path | None = None) -> None:
        from shieldkit.model.chat import resolve_chat_format
        from shieldkit.model.decoding import resolve_mode
        from shieldkit.model.quantize import resolve_classifier_precision

        self.model = model.eval().requires_grad_(False)  # frozen base: gradients flow only to inputs or adapters
        self.tokenizer = tokenizer
        self.lock = threading.RLock()
        self.stop_token_ids = _stop_token_ids(tokenizer, model)
        fmt = resolve_chat_format(chat_format, has_template=bool(getattr(tokenizer, "chat_template", None)),
                                  source_kind=info.source_kind)
        self.gguf = gguf  # the GGUF file the weights came from, for the llama-cpp decoder (None: not looked up)
        self.info = replace(info, decode=resolve_mode(decode, self.model, gguf), chat_format=fmt,
                            classifier_precision=resolve_classifier_precision(classifier_precision, self.model))
        self._decode_steps: dict[str, object] = {}  # decode mode -> step, built by decode_step() on first use

    # --- loading -----------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, settings: ModelSettings | None = None, *, use_cache: bool = True, progress: bool = True) -> GemmaRuntime:
        """Load the model named by ``settings`` (default: the embedded Gemma 3 270M from the cache).

        ``use_cache=False`` loads a GGUF straight through transformers' dequantizer (slow; for checks only).
        """
        from shieldkit.model import loading
        from shieldkit.model.decoding import wants_gguf

        settings = settings or ModelSettings.create()
        started = time.perf_counter()
        source = resolve_source(settings.model)
        device = loading.resolve_device(settings.device)
        dtype = loading.resolve_dtype(settings.dtype, device)
        loading.apply_threads(settings.threads)
        loaded = loading.load_weights(source, settings.resolved_cache_dir, use_cache=use_cache, progress=progress)
        model = loaded.model.to(device=device, dtype=dtype)
        gguf = None
        if wants_gguf(settings.decode, model.device):
            gguf = loading.gguf_file(source, settings.resolved_cache_dir)
        info = _describe(source, loaded, model, dtype, device, time.perf_counter() - started)
        return cls(model, loaded.tokenizer, info, decode=settings.decode, chat_format=settings.chat_format,
                   classifier_precision=settings.classifier_precision, gguf=gguf)

    # --- text <-> tokens ---------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, text: str, *, add_bos: bool = True) -> torch.Tensor:
        """Token ids of ``text``: LongTensor [T], with <bos> first unless ``add_bos`` is False."""
        import torch

        if not isinstance(text, str):
            raise ConfigError(f"text must be a string, got {type(text).__name__}")
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if add_bos and self.tokenizer.bos_token_id is not None:
            ids = [self.tokenizer.bos_token_id, *ids]
        return torch.tensor(ids, dtype=torch.long)

    def encode_chat(self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True) -> torch.Tensor:
        """Token ids [T] of chat messages in this runtime's chat format (``info.chat_format``). Text inside
        messages never becomes a control token: a message that spells out ``<end_of_turn>`` cannot forge a turn."""
        import torch

        from shieldkit.model.chat import chat_segments

        ids = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        segments = chat_segments(messages, add_generation_prompt=add_generation_prompt, chat_format=self.info.chat_format)
        for text, is_control in segments:
            if is_control:
                ids.append(self.tokenizer.convert_tokens_to_ids(text))
            else:
                ids += self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: Sequence[int] | torch.Tensor, *, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(list(map(int, ids)), skip_special_tokens=skip_special_tokens)

    def render_chat(self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True) -> str:
        from shieldkit.model.chat import render_chat

        return render_chat(messages, add_generation_prompt=add_generation_prompt, chat_format=self.info.chat_format)

    # --- generation --------------------------------------------------------------------------------------------

    def generate(self, prompt: str | Sequence[Mapping[str, Any]], config: GenerationConfig | None = None, *,
                 float_greedy: bool = False) -> GenerationResult:
        """Generate a completion of a prompt string, or a model turn for a list of chat messages."""
        stream = self.stream(prompt, config, float_greedy=float_greedy)
        for _ in stream:
            pass
        return stream.result

    def stream(self, prompt: str | Sequence[Mapping[str, Any]], config: GenerationConfig | None = None, *,
               float_greedy: bool = False) -> GenerationStream:
        """An iterator of text pieces; its ``result`` (finish reason, token counts) is set once exhausted.

        ``float_greedy``: decode with a step whose greedy text is the float model's own (``decode_step``), as
        the debugger does when it explains a continuation.

        A chat rendered as a transcript also stops at the next turn's label, and its answer is trimmed of
        surrounding whitespace (the same text streamed or not)."""
        from shieldkit.model.chat import TRANSCRIPT_STOPS
        from shieldkit.model.generation import GenerationConfig, GenerationStream

        config = config or GenerationConfig()
        if isinstance(prompt, str):
            return GenerationStream(self, self.encode(prompt), config, float_greedy=float_greedy)
        ids = self.encode_chat(prompt)
        if self.info.chat_format != "transcript":
            return GenerationStream(self, ids, config, float_greedy=float_greedy)
        stops = config.stop + tuple(s for s in TRANSCRIPT_STOPS if s not in config.stop)
        return GenerationStream(self, ids, replace(config, stop=stops), trim=True, float_greedy=float_greedy)

    def decode_step(self, *, float_greedy: bool = False):
        """The decoding step generation uses (``shieldkit.model.decoding``), built once per mode, under the lock.
        ``float_greedy``: a step whose greedy text is the float model's own (``decoding.float_greedy_mode``)."""
        from shieldkit.model.decoding import build_step, float_greedy_mode

        mode = float_greedy_mode(self.info.decode, self.model) if float_greedy else self.info.decode
        with self.lock:
            if mode not in self._decode_steps:
                self._decode_steps[mode] = build_step(mode, self.model, self.gguf)
            return self._decode_steps[mode]

    # --- internals (see shieldkit.model.internals for shapes) --------------------------------------------------

    def forward(self, text_or_ids: str | torch.Tensor, *, hidden_states: bool = False, attentions: bool = False) -> ForwardOutput:
        from shieldkit.model.internals import forward

        return forward(self, text_or_ids, hidden_states=hidden_states, attentions=attentions)

    def embedding_gradients(self, input_ids: torch.Tensor, target) -> EmbeddingGradients:
        from shieldkit.model.internals import embedding_gradients

        return embedding_gradients(self, input_ids, target)

    @contextlib.contextmanager
    def eager_attention(self) -> Iterator[None]:
        """Switch to eager attention (the only kind that returns weights) for the duration, under the lock."""
        with self.lock:
            previous = self.model.config._attn_implementation
            if previous == "eager":
                yield
                return
            self.model.set_attn_implementation("eager")
            try:
                yield
            finally:
                self.model.set_attn_implementation(previous)


def _stop_token_ids(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> frozenset[int]:
    """<eos> and <end_of_turn>: either ends a completion."""
    ids = set()
    for token_id in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(token_id, int):
            ids.add(token_id)
        elif isinstance(token_id, list):
            ids.update(token_id)
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        ids.add(end_of_turn)
    return frozenset(ids)


def _describe(source: ModelSource, loaded, model, dtype, device, seconds: float) -> ModelInfo:
    config = model.config
    return ModelInfo(
        name=source.name,
        source_kind=source.kind,
        source_path=str(source.path) if source.path else None,
        architecture=source.architecture,
        fingerprint=source.fingerprint,
        cache_path=str(loaded.cache_path) if loaded.cache_path else None,
        cache_event=loaded.cache_event,
        parameters=sum(p.numel() for p in model.parameters()),
        dtype=str(dtype).removeprefix("torch."),
        device=str(device),
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        vocab_size=config.vocab_size,
        load_seconds=round(seconds, 3),
    )


def load_runtime(model: str = EMBEDDED, **settings: Any) -> GemmaRuntime:
    """Shortcut: ``load_runtime("path/to/gemma")``."""
    return GemmaRuntime.load(ModelSettings.create(model=model, **settings))


__all__ = ["GemmaRuntime", "ModelInfo", "load_runtime", "ModelSourceError"]
