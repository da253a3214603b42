"""The one int8 quantizer: torch's dynamic quantization of ``nn.Linear`` maps, used by generation's int8 decoding
(``decoding.py``) and the classifiers' int8 scoring copy (``shieldkit.classifiers.int8``).

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

CLASSIFIER_PRECISIONS = ("float32", "int8")  # the values of the classifier_precision setting


def int8_capable(model: nn.Module) -> bool:
    """True for a float32 model on the CPU: the only place torch's int8 kernels run."""
    parameter = next(model.parameters())
    return parameter.device.type == "cpu" and parameter.dtype == torch.float32


def describe(model: nn.Module) -> str:
    """``float32 on cpu``-style text for error messages."""
    parameter = next(model.parameters())
    return f"{str(parameter.dtype).removeprefix('torch.')} on {parameter.device.type}"


def resolve_classifier_precision(requested: str, model: nn.Module) -> str:
    """The classifier_precision setting, checked: int8 needs a float32 model on the CPU (refused otherwise, naming
    the setting). float32 is the default: int8 misses the 0.01 score bound on the shipped safety model."""
    if requested not in CLASSIFIER_PRECISIONS:
        raise ConfigError(f"classifier_precision (SHIELDKIT_CLASSIFIER_PRECISION) must be float32 or int8, got {requested!r}")
    if requested == "int8" and not int8_capable(model):
        raise ConfigError("classifier_precision (SHIELDKIT_CLASSIFIER_PRECISION) 'int8' needs a float32 model on the "
                          f"CPU; this one is {describe(model)}")
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
