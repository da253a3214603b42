"""`shieldkit train-defaults` end to end on the tiny random Gemma: a stand-in data root with every training set."""

from __future__ import annotations

import csv
import json

from shieldkit.classifiers.corpus import SETS
from shieldkit.classifiers.registry import DEFAULT_POLICIES
from shieldkit.cli import main

_EVALUATION_FILES = {  # path under the data root -> (column, delimiter)
    "xstest/xstest_prompts.csv": ("prompt", ","), "injecguard/injecguard_eval_flat.csv": ("text", ","),
    "toxigen/toxigen_prompt_sentences.csv": ("text", ","), "toxigen/toxigen_demonstrations.csv": ("text", ","),
    "advbench/harmful_behaviors.csv": ("goal", ","), "giskard-prompt-injections/prompt_injections.csv": ("prompt", ","),
    "ethos/Ethos_Dataset_Binary.csv": ("comment", ";"),
}


def _data_root(root):
    for name, rule in SETS.items():
        label = next(iter(rule.by_label), "benign")
        rows = [{"text": f"{name} sample {i} about ordinary things", "label": label} for i in range(3)]
        folder = root / "training" / name
        folder.mkdir(parents=True)
        (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for path, (column, delimiter) in _EVALUATION_FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        with (root / path).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerows([[column], ["an evaluation text nobody trains on"]])
    return root


def test_train_defaults_writes_the_safety_model_and_every_head(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data, out = _data_root(tmp_path / "data"), tmp_path / "out"
    assert main(["train-defaults", "--model", "tiny-random", "--data-root", str(data), "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (out / "safety_model" / "safety.json").is_file()
    for name in DEFAULT_POLICIES:
        assert (out / name / "classifier.json").is_file() and f"{name}: saved to" in printed
    assert any((tmp_path / "cache").rglob("trunk-*.pt"))  # the frozen layers' states are kept for a rerun
