"""A saved classifier is a folder:

    adapter_config.json          peft's LoraConfig (layers_to_transform names the adapted layers)
    adapter_model.safetensors    peft's LoRA state dict, float16 (what the classifier computes with)
    head.safetensors             the readout: weight [D], bias []
    classifier.json              policy, description, labels, threshold, calibration, base-model fingerprint,
                                 training settings, data hash and cross-validated training metrics

Loading checks the base-model fingerprint and refuses a different Gemma.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from shieldkit.classifiers.gemma import FORMAT_VERSION, ClassifierCard, GemmaClassifier, PolicyHead, attach_lora
from shieldkit.errors import ConfigError

CARD = "classifier.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
HEAD = "head.safetensors"
ADAPTER_DTYPE = torch.float16


def save_classifier(classifier: GemmaClassifier, folder: str | Path) -> Path:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    classifier.network.peft_config["default"].save_pretrained(str(folder))
    _portable_adapter_config(folder / ADAPTER_CONFIG, classifier.card.base_model.get("name", ""))
    state = get_peft_model_state_dict(classifier.network)
    save_file({k: v.detach().to(ADAPTER_DTYPE).contiguous() for k, v in state.items()}, str(folder / ADAPTER_WEIGHTS))
    head = {"weight": classifier.head.weight.detach().float().contiguous(), "bias": classifier.head.bias.detach().float().reshape(())}
    save_file(head, str(folder / HEAD))
    (folder / CARD).write_text(json.dumps(classifier.card.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return folder


def _portable_adapter_config(path: Path, base_name: str) -> None:
    """No machine-specific cache path, and a stable module order, so retraining reproduces the file."""
    values = json.loads(path.read_text(encoding="utf-8"))
    values["base_model_name_or_path"] = base_name
    if isinstance(values.get("target_modules"), list):
        values["target_modules"] = sorted(values["target_modules"])
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_card(folder: str | Path) -> ClassifierCard:
    folder = Path(folder)
    path = folder / CARD
    if not path.is_file():
        raise ConfigError(f"{folder} is not a saved classifier (no {CARD})")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        card = ClassifierCard.from_dict(values)
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ConfigError(f"{path}: unreadable classifier card ({exc})") from None
    if card.format_version > FORMAT_VERSION:
        raise ConfigError(f"{path}: format version {card.format_version} is newer than this shieldkit reads ({FORMAT_VERSION})")
    return card


def load_saved(folder: str | Path, runtime) -> GemmaClassifier:
    """Load a classifier folder onto ``runtime``; refuses a runtime whose base weights differ."""
    from peft import LoraConfig, set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    card = read_card(folder)
    trained_on = card.base_model.get("fingerprint")
    if trained_on != runtime.info.fingerprint:
        raise ConfigError(
            f"classifier {card.policy!r} ({folder}) was trained on base model {card.base_model.get('name')!r} "
            f"(fingerprint {str(trained_on)[:12]}), but the runtime is {runtime.info.name!r} "
            f"(fingerprint {runtime.info.fingerprint[:12]}); retrain it on this model with `shieldkit train`"
        )
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, HEAD):
        if not (folder / name).is_file():
            raise ConfigError(f"{folder} is missing {name}; the saved classifier is incomplete")
    config = LoraConfig.from_pretrained(str(folder))
    config.base_model_name_or_path = None  # the runtime's own model; the fingerprint check above vouches for it
    network = attach_lora(runtime, config)
    state = {k: v.float() for k, v in load_file(str(folder / ADAPTER_WEIGHTS)).items()}
    result = set_peft_model_state_dict(network, state)
    if getattr(result, "unexpected_keys", None):
        raise ConfigError(f"{folder / ADAPTER_WEIGHTS}: weights that fit no LoRA layer, e.g. {result.unexpected_keys[0]}")
    head_state = load_file(str(folder / HEAD))
    head = PolicyHead(runtime.info.hidden_size)
    with torch.no_grad():
        head.weight.copy_(head_state["weight"])
        head.bias.copy_(head_state["bias"])
    return GemmaClassifier(runtime, card, network, head)
