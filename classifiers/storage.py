"""Saved safety models and classifier folders.

A safety model is a folder:

    adapter_config.json          peft's LoraConfig (layers_to_transform names the adapted layers)
    adapter_model.safetensors    peft's LoRA state dict, float16 (what the model computes with)
    safety.json                  layers, window size, base-model fingerprint, training settings, corpus counts

A classifier (a default policy's ``classifier/`` or what ``shieldkit train`` writes) is a folder:

    head.safetensors             the readout: weight [D], bias []
    classifier.json              policy, description, labels, threshold, Platt calibration, the fingerprint of the
                                 safety model it reads, metrics and how the threshold was chosen, training data hash

Loading checks both fingerprints: a safety model refuses a different base Gemma, a head a different safety model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from shieldkit.classifiers.safety import FORMAT_VERSION
from shieldkit.errors import ConfigError

CARD = "classifier.json"
SAFETY_CARD = "safety.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
HEAD = "head.safetensors"
ADAPTER_DTYPE = torch.float16


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path.parent} is not a saved {what} (no {path.name})")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable {what} card ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a {what} card must be a JSON object")
    version = values.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(f"{path}: format_version must be a whole number, got {version!r}")
    if version > FORMAT_VERSION:
        raise ConfigError(f"{path}: format version {values['format_version']} is newer than this shieldkit reads ({FORMAT_VERSION})")
    return values


def _load_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; a truncated or foreign file is a ConfigError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable {what} weights ({exc}); the folder is corrupt") from None


def adapter_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """16 hex of sha256 over the float16 LoRA tensors in key order: the identity heads refer to."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().to(ADAPTER_DTYPE).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_safety(safety, folder: str | Path) -> Path:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    safety.network.peft_config["default"].save_pretrained(str(folder))
    values = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    values["base_model_name_or_path"] = safety.card.base_model.get("name", "")  # no machine-specific cache path
    if isinstance(values.get("target_modules"), list):
        values["target_modules"] = sorted(values["target_modules"])
    (folder / ADAPTER_CONFIG).write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    state = get_peft_model_state_dict(safety.network)
    save_file({k: v.detach().to(ADAPTER_DTYPE).contiguous() for k, v in state.items()}, str(folder / ADAPTER_WEIGHTS))
    (folder / SAFETY_CARD).write_text(json.dumps(dict(safety.card.__dict__), indent=2) + "\n", encoding="utf-8")
    return folder


def read_safety_card(folder: str | Path):
    from shieldkit.classifiers.safety import SafetyCard

    path = Path(folder) / SAFETY_CARD
    try:
        return SafetyCard(**_read_json(path, "safety model"))
    except TypeError as exc:
        raise ConfigError(f"{path}: unreadable safety model card ({exc})") from None


def load_safety(folder: str | Path, runtime):
    """Load a safety model folder onto ``runtime``; refuses a runtime whose base weights differ."""
    from peft import LoraConfig, set_peft_model_state_dict

    from shieldkit.classifiers.gemma import attach_lora
    from shieldkit.classifiers.safety import SafetyModel

    folder = Path(folder)
    card = read_safety_card(folder)
    trained_on = card.base_model.get("fingerprint")
    if trained_on != runtime.info.fingerprint:
        raise ConfigError(
            f"the safety model at {folder} was trained on base model {card.base_model.get('name')!r} "
            f"(fingerprint {str(trained_on)[:12]}), but the runtime is {runtime.info.name!r} "
            f"(fingerprint {runtime.info.fingerprint[:12]}); train one on this model with `shieldkit train-defaults`"
        )
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (folder / name).is_file():
            raise ConfigError(f"{folder} is missing {name}; the saved safety model is incomplete")
    try:
        config = LoraConfig.from_pretrained(str(folder))
    except (ValueError, TypeError, OSError) as exc:  # JSONDecodeError is a ValueError
        raise ConfigError(f"{folder / ADAPTER_CONFIG}: unreadable LoRA config ({exc})") from None
    config.base_model_name_or_path = None  # the runtime's own model; the fingerprint check above vouches for it
    network = attach_lora(runtime, config)
    state = _load_tensors(folder / ADAPTER_WEIGHTS, "safety model adapter")
    if adapter_fingerprint(state) != card.fingerprint:
        raise ConfigError(f"{folder / ADAPTER_WEIGHTS} does not match the fingerprint in {SAFETY_CARD}; the folder is corrupt")
    result = set_peft_model_state_dict(network, {k: v.float() for k, v in state.items()})
    if getattr(result, "unexpected_keys", None):
        raise ConfigError(f"{folder / ADAPTER_WEIGHTS}: weights that fit no LoRA layer, e.g. {result.unexpected_keys[0]}")
    return SafetyModel(runtime, card, network)


def check_head_target(folder: str | Path) -> Path:
    """Where ``save_head`` may write: a new folder, an empty one, or a saved classifier (replaced). Called before
    training, so a bad ``--out`` fails before minutes of work, not after."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file; a classifier is saved as a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CARD).is_file():
        raise ConfigError(f"{folder} is a folder that holds no saved classifier (no {CARD}); choose a new or empty one")
    parent = next((p for p in (folder.absolute(), *folder.absolute().parents) if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot create {folder}: {parent} is not a writable folder")
    return folder


def save_head(classifier, folder: str | Path) -> Path:
    """Write the classifier folder whole or not at all: into a new sibling folder, then moved into place (an
    existing classifier there is replaced only once the new one is complete)."""
    from safetensors.torch import save_file

    folder = check_head_target(folder)
    head = {"weight": classifier.head.weight.detach().float().contiguous(),
            "bias": classifier.head.bias.detach().float().reshape(())}
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            save_file(head, str(staging / HEAD))
            (staging / CARD).write_text(json.dumps(classifier.card.to_dict(), indent=2) + "\n", encoding="utf-8")
            if folder.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
                os.replace(folder, old / folder.name)
                os.replace(staging, folder)
                shutil.rmtree(old)
            else:
                os.replace(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    except OSError as exc:
        raise ConfigError(f"cannot save the classifier to {folder}: {exc.strerror or exc}") from None
    return folder


def read_card(folder: str | Path):
    from shieldkit.classifiers.safety import HeadCard

    path = Path(folder) / CARD
    values = _read_json(path, "classifier")
    if int(values.get("format_version", 1)) < FORMAT_VERSION:
        raise ConfigError(f"{path}: a classifier from an older shieldkit (one LoRA per policy); retrain it with "
                          "`shieldkit train`, which now fits a head on the shared safety model")
    try:
        return HeadCard.from_dict(values)
    except (TypeError, KeyError, ConfigError) as exc:
        raise ConfigError(f"{path}: unreadable classifier card ({exc})") from None


def load_head(folder: str | Path, safety):
    """A classifier folder -> a HeadClassifier on ``safety`` (refuses a head fitted on another safety model)."""
    from shieldkit.classifiers.gemma import PolicyHead
    from shieldkit.classifiers.safety import HeadClassifier

    folder = Path(folder)
    card = read_card(folder)
    if not (folder / HEAD).is_file():
        raise ConfigError(f"{folder} is missing {HEAD}; the saved classifier is incomplete")
    state = _load_tensors(folder / HEAD, "classifier head")
    head = PolicyHead(safety.runtime.info.hidden_size)
    if sorted(state) != ["bias", "weight"]:
        raise ConfigError(f"{folder / HEAD}: a head holds the tensors bias and weight, this file {', '.join(sorted(state)) or 'none'}")
    for name, tensor in (("weight", head.weight), ("bias", head.bias)):
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ConfigError(f"{folder / HEAD}: head {name} shape {tuple(state[name].shape)} should be "
                              f"{tuple(tensor.shape)} (hidden size {safety.runtime.info.hidden_size})")
        if not bool(torch.isfinite(state[name]).all()):
            raise ConfigError(f"{folder / HEAD}: head {name} holds NaN or infinite values; the folder is corrupt")
    with torch.no_grad():
        head.weight.copy_(state["weight"])
        head.bias.copy_(state["bias"])
    return HeadClassifier(safety, card, head)
