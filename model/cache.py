"""The conversion cache: a GGUF is dequantized once by transformers and kept as safetensors + tokenizer.

Layout, keyed by the source's sha256 (so a changed GGUF never reuses a stale conversion)::

    <cache_dir>/models/<sha256[:16]>/tokenizer/   tokenizer.json, ... , manifest.json
    <cache_dir>/models/<sha256[:16]>/model/       model.safetensors, config.json, ... , manifest.json
    <cache_dir>/models/<sha256[:16]>/gguf/        the embedded GGUF whole, manifest.json (only for llama-cpp)

Each part is built in a sibling ``*.partial-<pid>`` folder, gets a manifest (size and CRC-32 of every file) written
last, and is renamed into place atomically, under a file lock so two processes never build it twice. On load the
manifest is checked; a missing, partial or corrupt part is removed and rebuilt, never half-loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shieldkit.errors import ConfigError, ModelSourceError
from shieldkit.model.source import ModelSource, assemble_embedded

log = logging.getLogger("shieldkit.model")

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_CRC_BLOCK = 1 << 24
# How many progress stages each part reports while it is built (for a bar with a known length).
TOKENIZER_STAGES = 3  # assemble, convert, checksum
MODEL_STAGES = 4  # assemble, dequantize, write, checksum
EMBEDDED_GGUF = "gemma-3-270m-q4_k_m.gguf"


@dataclass(frozen=True)
class CacheEntry:
    root: Path  # <cache_dir>/models/<key>
    source: ModelSource

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def tokenizer_dir(self) -> Path:
        return self.root / "tokenizer"

    @property
    def gguf_dir(self) -> Path:
        return self.root / "gguf"


@dataclass(frozen=True)
class PartStatus:
    path: Path
    event: str  # "hit", "built" or "rebuilt (<why the old one was refused>)"


def cache_entry(cache_dir: Path, source: ModelSource) -> CacheEntry:
    return CacheEntry(Path(cache_dir) / "models" / source.fingerprint[:16], source)


def ensure_tokenizer(entry: CacheEntry, progress: Callable[[str], None] = lambda stage: None) -> PartStatus:
    def build(out: Path) -> None:
        from transformers import AutoTokenizer

        with source_gguf(entry, progress) as gguf:
            progress("converting the tokenizer (reads the GGUF vocabulary)")
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            tokenizer.save_pretrained(str(out))

    return _ensure_part(entry.tokenizer_dir, build, entry.source, progress)


def ensure_model(entry: CacheEntry, progress: Callable[[str], None] = lambda stage: None) -> PartStatus:
    def build(out: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        with source_gguf(entry, progress) as gguf:
            progress("dequantizing the GGUF weights")
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The dequantized float32 weights are plain tensors now: drop the GGUF quantizer so they save as safetensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        progress("writing safetensors")
        model.save_pretrained(str(out))

    return _ensure_part(entry.model_dir, build, entry.source, progress)


def ensure_gguf(entry: CacheEntry, progress: Callable[[str], None] = lambda stage: None) -> Path:
    """The embedded GGUF kept whole on disk (for llama.cpp, which reads a file), assembled once."""
    def build(out: Path) -> None:
        out.mkdir(parents=True)
        progress("assembling the embedded GGUF")
        assemble_embedded(out / EMBEDDED_GGUF)

    return _ensure_part(entry.gguf_dir, build, entry.source, progress).path / EMBEDDED_GGUF


@contextlib.contextmanager
def source_gguf(entry: CacheEntry, progress: Callable[[str], None]) -> Iterator[Path]:
    """The source GGUF on disk; the embedded one is assembled from its chunks into a temporary folder."""
    if entry.source.kind != "embedded":
        if entry.source.path is None:
            raise ModelSourceError(f"{entry.source.name} has no file to convert")
        yield entry.source.path
        return
    entry.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=entry.root, prefix=".assemble-") as tmp:
        progress("assembling the embedded GGUF")
        yield assemble_embedded(Path(tmp) / EMBEDDED_GGUF)


def _ensure_part(
    part: Path, build: Callable[[Path], None], source: ModelSource, progress: Callable[[str], None]
) -> PartStatus:
    problem = verify_part(part, source)
    if problem is None:
        return PartStatus(part, "hit")
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        with _locked(part.parent / f".{part.name}.lock"):
            problem = verify_part(part, source)  # another process may have finished it while we waited
            if problem is None:
                return PartStatus(part, "hit")
            existed = part.exists()
            if existed:
                log.warning("cache %s is unusable (%s); rebuilding it", part, problem)
                shutil.rmtree(part)
            # A partial folder exists only while its builder holds this lock: any left now is from a build that
            # was killed (out of memory, SIGKILL), and would fill the disk build after build.
            for stale in part.parent.glob(f"{part.name}.partial-*"):
                shutil.rmtree(stale, ignore_errors=True)
            partial = part.with_name(f"{part.name}.partial-{os.getpid()}")
            try:
                build(partial)
                progress("checksumming the cache")
                _write_manifest(partial, source)
                os.rename(partial, part)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ConfigError(f"cannot build the model cache at {part.parent}: {exc.strerror or exc}{where}; free some "
                          "space or set SHIELDKIT_CACHE_DIR to a writable folder") from None
    return PartStatus(part, f"rebuilt ({problem})" if existed else "built")


def verify_part(part: Path, source: ModelSource, *, checksums: bool = True) -> str | None:
    """None if the part is complete and intact, else why not (``checksums=False``: sizes only, no reading of the
    files, for a quick look such as how many stages a progress bar will have)."""
    manifest_path = part / MANIFEST
    if not part.is_dir():
        return "missing"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("version") != MANIFEST_VERSION or manifest.get("fingerprint") != source.fingerprint:
            return "manifest is from another source or format"
    except FileNotFoundError:
        return "no manifest (a partial write)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable manifest: {exc}"
    for name, expected in files.items():
        path = part / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{name} has {path.stat().st_size} bytes, expected {expected['size']}"
        if checksums and _crc32(path) != expected["crc32"]:
            return f"{name} fails its checksum"
    return None


def _write_manifest(part: Path, source: ModelSource) -> None:
    files = {
        str(path.relative_to(part)): {"size": path.stat().st_size, "crc32": _crc32(path)}
        for path in sorted(part.rglob("*"))
        if path.is_file()
    }
    manifest = {"version": MANIFEST_VERSION, "fingerprint": source.fingerprint, "source": source.name, "files": files}
    (part / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as handle:
        while block := handle.read(_CRC_BLOCK):
            crc = zlib.crc32(block, crc)
    return crc


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
