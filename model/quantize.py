"""The one int8 quantizer: torch's dynamic quantization of ``nn.Linear`` maps, used by generation's int8 decoding
(``decoding.py``) and the classifiers' int8 scoring copy (``shieldkit.classifiers.scoring_layers``); and the
classifier_precision setting, which chooses between float32, bfloat16, mixed and int8 scoring copies.

Dynamic quantization stores each weight as int8 with one scale per output row and quantizes the activations on
every call (one scale per call, from the input's min and max); the matmul runs in int8 (fbgemm / oneDNN). It is
a CPU feature for float32 models only.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from shieldkit.errors import ConfigError

SCORING_PRECISIONS = ("float32", "bfloat16", "mixed", "int8")  # what the classifiers can score in
CLASSIFIER_PRECISIONS = ("auto", *SCORING_PRECISIONS)  # the values of the classifier_precision setting


def has_amx() -> bool:
    """True when this CPU has AMX tiles (Intel Sapphire Rapids and later), where oneDNN's bfloat16 matmuls run
    about 4x faster than float32 ones (BENCHMARKS.md). Without AMX, bfloat16 matmuls are slower than float32 here."""
    return _cpu_probe("_is_amx_tile_supported")


def has_avx512_bf16() -> bool:
    """True when this CPU has native bfloat16 dot products (AVX512-BF16: AMD Zen 4 and later, Intel Cooper Lake and
    later), where oneDNN's bfloat16 matmuls run about 4x faster than float32 ones even without AMX (BENCHMARKS.md).
    On AVX2-only CPUs bfloat16 is emulated and slower than float32."""
    return _cpu_probe("_is_avx512_bf16_supported")


def _cpu_probe(name: str) -> bool:
    """``torch.cpu.<name>()``: private in torch 2.13, so a build without it counts as lacking the feature."""
    probe = getattr(torch.cpu, name, None)
    return bool(probe()) if probe is not None else False


def auto_precision(model: nn.Module) -> str:
    """What ``auto`` resolves to: the fastest scoring copy that keeps every default policy's score within 0.01 of
    float32 on this CPU (measured; ``tests/classifiers/test_precision_real_model.py``). With AMX, every linear map in
    bfloat16; with AVX512-BF16 but no AMX, ``mixed`` (all-bfloat16 moved scores by up to 0.02 there); otherwise, and
    for a model that is not float32 on the CPU, float32."""
    if not int8_capable(model):
        return "float32"
    if has_amx():
        return "bfloat16"
    return "mixed" if has_avx512_bf16() else "float32"


def int8_capable(model: nn.Module) -> bool:
    """True for a float32 model on the CPU: the only place torch's int8 kernels run."""
    parameter = next(model.parameters())
    return parameter.device.type == "cpu" and parameter.dtype == torch.float32


def describe(model: nn.Module) -> str:
    """``float32 on cpu``-style text for error messages."""
    parameter = next(model.parameters())
    return f"{str(parameter.dtype).removeprefix('torch.')} on {parameter.device.type}"


def resolve_classifier_precision(requested: str, model: nn.Module) -> str:
    """The classifier_precision setting, checked and resolved. ``auto``: :func:`auto_precision`. bfloat16 and mixed
    need a float32 model (the reference they copy); int8 a float32 model on the CPU. Refusals name the setting."""
    if requested not in CLASSIFIER_PRECISIONS:
        raise ConfigError("classifier_precision (SHIELDKIT_CLASSIFIER_PRECISION) must be one of "
                          f"{', '.join(CLASSIFIER_PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        return auto_precision(model)
    if requested == "int8" and not int8_capable(model):
        raise ConfigError("classifier_precision (SHIELDKIT_CLASSIFIER_PRECISION) 'int8' needs a float32 model on the "
                          f"CPU; this one is {describe(model)}")
    if requested in ("bfloat16", "mixed") and next(model.parameters()).dtype != torch.float32:
        raise ConfigError(f"classifier_precision (SHIELDKIT_CLASSIFIER_PRECISION) {requested!r} copies a float32 "
                          f"model; this one is {describe(model)}")
    return requested


def int8_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose nn.Linear maps are int8; every other parameter and buffer is shared."""
    memo: dict[int, object] = {id(p): p for p in module.parameters()}
    memo.update({id(b): b for b in module.buffers()})
    return quantize_linear(copy.deepcopy(module, memo))


def quantize_linear(module: nn.Module) -> nn.Module:
    """Swap ``module``'s nn.Linear children for dynamic int8 ones, in place (fbgemm; per-output-row weight scales).
    The float weights are read, never changed: the int8 modules hold packed copies of their own.

    torch.ao.quantization warns that it is deprecated in favour of torchao; the pinned torch 2.13 ships it and
    its kernels, so that one warning is silenced here rather than adding a dependency.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(torch\.ao\.quantization|quantize_per_).*deprecated")
        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
