"""Retraining the safety model and the default policies' heads (``shieldkit train-defaults``, ``make policies``).

The corpus is ``../shared/data/training`` plus the team's examples (``corpus.py``), and optionally carried
injections (``augment.py``); the settings are fixed here, so retraining on the same data reproduces the committed folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shieldkit.classifiers.augment import training_corpus
from shieldkit.classifiers.registry import DEFAULT_POLICIES, POLICY_ROOT, SAFETY_ROOT, default_policy
from shieldkit.classifiers.reserve import benign_reserve
from shieldkit.classifiers.safety_training import SafetyTrainingConfig, train_safety_model

# The settings the committed safety model was trained with (run 5 in BENCHMARKS.md: one epoch over the training
# split on 2 CPU cores, about 73 minutes): up to four windows of each row, the highest scoring as at inference,
# and 1,200 carried injections (augment.py) on top of the public sets and the team examples.
DEFAULT_TRAINING = SafetyTrainingConfig(epochs=1, max_tokens=96, max_windows=4, fpr_budget=0.01, seed=0)
DEFAULT_CARRIED = 1200  # carried injections (augment.py) in the defaults' corpus


def train_defaults(runtime, data_root: str | Path, out_dir: str | Path | None = None,
                   config: SafetyTrainingConfig = DEFAULT_TRAINING, cache_dir: str | Path | None = None):
    """Train the safety model and the default heads; save them (default: into the package). ``cache_dir`` keeps
    the frozen trunk's states for a rerun on the same corpus. Returns (safety model, {policy: classifier},
    {what: folder})."""
    from shieldkit.classifiers.storage import save_head, save_safety

    corpus = training_corpus(data_root, POLICY_ROOT, carried=DEFAULT_CARRIED)
    descriptions = {name: default_policy(name).description for name in DEFAULT_POLICIES}
    reserve = benign_reserve(data_root, corpus, seed=config.seed)
    safety, heads = train_safety_model(corpus, runtime, config, descriptions, cache_dir, reserve)
    out = Path(out_dir) if out_dir is not None else None
    folders = {"safety model": out / "safety_model" if out else SAFETY_ROOT}
    for name in DEFAULT_POLICIES:
        folders[name] = out / name if out else default_policy(name).classifier
    for folder in folders.values():
        if folder.exists():
            shutil.rmtree(folder)
    save_safety(safety, folders["safety model"])
    for name, classifier in heads.items():
        save_head(classifier, folders[name])
    return safety, heads, folders
