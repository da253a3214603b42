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
    if int(values.get("format_version", 0)) > FORMAT_VERSION:
        raise ConfigError(f"{path}: format version {values['format_version']} is newer than this shieldkit reads ({FORMAT_VERSION})")
    return values


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
    from safetensors.torch import load_file

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
    config = LoraConfig.from_pretrained(str(folder))
    config.base_model_name_or_path = None  # the runtime's own model; the fingerprint check above vouches for it
    network = attach_lora(runtime, config)
    state = load_file(str(folder / ADAPTER_WEIGHTS))
    if adapter_fingerprint(state) != card.fingerprint:
        raise ConfigError(f"{folder / ADAPTER_WEIGHTS} does not match the fingerprint in {SAFETY_CARD}; the folder is corrupt")
    result = set_peft_model_state_dict(network, {k: v.float() for k, v in state.items()})
    if getattr(result, "unexpected_keys", None):
        raise ConfigError(f"{folder / ADAPTER_WEIGHTS}: weights that fit no LoRA layer, e.g. {result.unexpected_keys[0]}")
    return SafetyModel(runtime, card, network)


def save_head(classifier, folder: str | Path) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    head = {"weight": classifier.head.weight.detach().float().contiguous(),
            "bias": classifier.head.bias.detach().float().reshape(())}
    save_file(head, str(folder / HEAD))
    (folder / CARD).write_text(json.dumps(classifier.card.to_dict(), indent=2) + "\n", encoding="utf-8")
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
    except (TypeError, KeyError) as exc:
        raise ConfigError(f"{path}: unreadable classifier card ({exc})") from None


def load_head(folder: str | Path, safety):
    """A classifier folder -> a HeadClassifier on ``safety`` (refuses a head fitted on another safety model)."""
    from safetensors.torch import load_file

    from shieldkit.classifiers.gemma import PolicyHead
    from shieldkit.classifiers.safety import HeadClassifier

    folder = Path(folder)
    card = read_card(folder)
    if not (folder / HEAD).is_file():
        raise ConfigError(f"{folder} is missing {HEAD}; the saved classifier is incomplete")
    state = load_file(str(folder / HEAD))
    head = PolicyHead(safety.runtime.info.hidden_size)
    if tuple(state.get("weight", torch.zeros(0)).shape) != tuple(head.weight.shape):
        raise ConfigError(f"{folder / HEAD}: head weight shape {tuple(state['weight'].shape)} does not fit hidden size "
                          f"{safety.runtime.info.hidden_size}")
    with torch.no_grad():
        head.weight.copy_(state["weight"])
        head.bias.copy_(state["bias"])
    return HeadClassifier(safety, card, head)
