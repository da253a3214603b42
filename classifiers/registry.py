"""Finding classifiers: the committed default policies by name, saved folders by path, and the safety model
they all read.

The shared safety model is committed in ``safety_model/``. Each default policy is a folder ``policies/<name>/``
holding ``policy.json`` (name and description), ``examples.jsonl`` (the team-written examples, trained on beside
the public sets) and ``classifier/`` (its head on the safety model). ``shieldkit train-defaults`` (or
``make policies``) retrains the safety model and every default head reproducibly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shieldkit.errors import ConfigError

POLICY_ROOT = Path(__file__).parent / "policies"
SAFETY_ROOT = Path(__file__).parent / "safety_model"
DEFAULT_POLICIES: tuple[str, ...] = (
    "hate",
    "harassment",
    "sexual",
    "violence",
    "self_harm",
    "dangerous",
    "prompt_injection",
)


@dataclass(frozen=True)
class PolicySpec:
    name: str
    description: str
    examples: Path  # team-written examples (JSONL)
    classifier: Path  # the committed trained classifier folder


def default_policy(name: str, root: Path = POLICY_ROOT) -> PolicySpec:
    if name not in DEFAULT_POLICIES:
        raise ConfigError(f"unknown default policy {name!r}; known: {', '.join(DEFAULT_POLICIES)}")
    folder = root / name
    meta = json.loads((folder / "policy.json").read_text(encoding="utf-8"))
    return PolicySpec(name=name, description=meta["description"], examples=folder / "examples.jsonl",
                      classifier=folder / "classifier")


def resolve(ref: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> Path:
    """A default policy's name or a saved classifier folder -> the folder to load. This is the one resolver of
    classifier references: a bare default-policy name wins; anything else is a folder, relative to ``base_dir``
    (e.g. the folder of the guardrail policy file that names it) when given, else to the working directory."""
    if isinstance(ref, str) and ref in DEFAULT_POLICIES:
        folder = default_policy(ref).classifier
        if not (folder / "classifier.json").is_file():
            raise ConfigError(f"default policy {ref!r} has no trained classifier at {folder}; run `shieldkit train-defaults`")
        return folder
    if not isinstance(ref, (str, os.PathLike)):
        raise ConfigError(f"a classifier reference must be a policy name or a folder, got {type(ref).__name__}")
    path = Path(ref).expanduser()
    if base_dir is not None:
        path = Path(base_dir) / path
    if path.is_dir():
        return path
    if isinstance(ref, os.PathLike) or "/" in ref or ref.startswith((".", "~")):
        raise ConfigError(f"classifier folder {path} does not exist")
    raise ConfigError(
        f"unknown classifier {str(ref)!r}: not a default policy ({', '.join(DEFAULT_POLICIES)}) and not a saved "
        f"classifier folder"
    )


def load_safety_model(runtime, folder: str | os.PathLike | None = None):
    """The safety model every classifier head reads (default: the committed one), on ``runtime``."""
    from shieldkit.classifiers.storage import load_safety

    folder = Path(folder) if folder is not None else SAFETY_ROOT
    if not (folder / "safety.json").is_file():
        raise ConfigError(f"no safety model at {folder}; run `shieldkit train-defaults`")
    return load_safety(folder, runtime)


def load_classifier(ref: str | os.PathLike, runtime, safety=None):
    """A default policy name (e.g. ``"hate"``) or a saved folder -> a classifier on ``runtime``.

    ``safety``: the safety model to put the head on (default: the committed one, loaded now)."""
    from shieldkit.classifiers.storage import load_head

    folder = resolve(ref)
    return load_head(folder, safety if safety is not None else load_safety_model(runtime))


def load_bank(refs: Sequence[str | os.PathLike] | None, runtime, safety=None):
    """Several classifiers sharing one safety model on ``runtime`` (default: every default policy), by policy."""
    from shieldkit.classifiers.bank import GemmaBank
    from shieldkit.classifiers.storage import load_head

    if isinstance(refs, (str, os.PathLike)):
        refs = [refs]
    refs = list(DEFAULT_POLICIES if refs is None else refs)
    folders = [resolve(ref) for ref in refs]  # a bad reference fails before anything loads
    safety = safety if safety is not None else load_safety_model(runtime)
    classifiers = {}
    for ref, folder in zip(refs, folders):
        classifier = load_head(folder, safety)
        if classifier.name in classifiers:
            raise ConfigError(f"two classifiers for policy {classifier.name!r} in one bank ({ref!r} repeats it)")
        classifiers[classifier.name] = classifier
    return GemmaBank(classifiers)
