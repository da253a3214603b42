"""A tiny random-weight Gemma for fast tests: real architecture code, real tokenizer, no download.

Its vocabulary is the real Gemma 3 one (262,144 tokens), so it pairs with the embedded tokenizer; everything
else is shrunk so a forward pass takes milliseconds. Its outputs are noise, but gradients, attention and
decoding behave exactly as in the full model.
"""

from __future__ import annotations

import hashlib
import json

import torch

GEMMA3_VOCAB = 262_144

# Per model_type: the tiny shape. Every Gemma generation keeps its own quirks (Gemma 2/3 sliding windows and
# soft-capping), only the sizes shrink.
_TINY_SHAPES: dict[str, dict] = {
    "gemma3_text": dict(
        hidden_size=64,  # D
        intermediate_size=128,  # MLP width
        num_hidden_layers=4,  # L: three sliding-window layers then one global, as in Gemma 3's 5:1 pattern
        layer_types=["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
        sliding_window=16,  # small so tests exercise the sliding mask
        num_attention_heads=4,  # H
        num_key_value_heads=2,  # grouped-query attention
        head_dim=16,
        query_pre_attn_scalar=16,
        max_position_embeddings=2048,
    ),
    "gemma2": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, query_pre_attn_scalar=16, sliding_window=16, max_position_embeddings=2048,
    ),
    "gemma": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
        head_dim=16, max_position_embeddings=2048,
    ),
}
TINY_SEED = 0


def tiny_config(model_type: str = "gemma3_text", vocab_size: int = GEMMA3_VOCAB):
    """A transformers config for a tiny model of the given Gemma generation."""
    from transformers import AutoConfig

    if model_type not in _TINY_SHAPES:
        raise ValueError(f"no tiny shape for model_type {model_type!r}; known: {', '.join(_TINY_SHAPES)}")
    return AutoConfig.for_model(
        model_type, vocab_size=vocab_size, bos_token_id=2, eos_token_id=1, pad_token_id=0, **_TINY_SHAPES[model_type]
    )


def build_tiny_model(model_type: str = "gemma3_text", seed: int = TINY_SEED):
    """Random weights from ``seed``, without touching the global RNG."""
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(tiny_config(model_type), dtype=torch.float32)
    return model.eval()


TINY_FINGERPRINT = hashlib.sha256(
    json.dumps({"shape": _TINY_SHAPES["gemma3_text"], "seed": TINY_SEED}, sort_keys=True).encode()
).hexdigest()
