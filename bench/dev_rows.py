"""The packaged default policies on the team's untrained rows (``classifiers/policies/pending``): a dev set for
choosing between training designs without touching an evaluation-only set.

    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 SHIELDKIT_PROGRESS=0 .venv/bin/python bench/dev_rows.py

The held-out split of the training corpus comes from the same sets as the training rows, and every design tried so
far scores within its noise there (ROC-AUC 0.98-0.999). The pending rows were written for the training data's
gaps (harmful requests in other framings, injections hidden in documents, chatbot-style allowed requests) and no
shipped model has been trained on them, so they measure transfer. A row of ``<policy>.jsonl`` labelled 1 violates
that policy; every other row is allowed by every policy. Prints recall per policy at the shipped thresholds and the
share of allowed rows flagged by any policy, per file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shieldkit.classifiers import DEFAULT_POLICIES, load_bank
from shieldkit.classifiers.corpus import read_jsonl
from shieldkit.model import GemmaRuntime, ModelSettings

PENDING = Path(__file__).resolve().parents[1] / "classifiers" / "policies" / "pending"


def dev_rows(folder: Path) -> list[tuple[str, str | None, str]]:
    """(text, the policy it violates or None, file stem) for every row of the folder's JSONL files."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        policy = path.stem.removeprefix("run8_")
        for row in read_jsonl(path):
            violates = policy if policy in DEFAULT_POLICIES and row.get("label") == 1 else None
            rows.append((row["text"], violates, path.stem))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=PENDING, help="folder of team-written JSONL rows")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = parser.parse_args()
    rows = dev_rows(args.folder)
    runtime = GemmaRuntime.load(ModelSettings.create(), progress=False)
    bank = load_bank(None, runtime)
    thresholds = {name: c.threshold for name, c in bank.classifiers.items()}
    scores = bank.score([text for text, _, _ in rows])
    flagged = [any(scores[p][i] >= thresholds[p] for p in thresholds) for i in range(len(rows))]
    results: dict[str, dict] = {"recall": {}, "allowed_flagged": {}}
    print(f"safety model {bank.classifiers[DEFAULT_POLICIES[0]].card.safety_model}, precision "
          f"{runtime.info.classifier_precision}\n\n| rows | n | share |\n|---|---|---|")
    for policy in DEFAULT_POLICIES:
        chosen = [i for i, (_, violates, _) in enumerate(rows) if violates == policy]
        if chosen:
            share = sum(scores[policy][i] >= thresholds[policy] for i in chosen) / len(chosen)
            results["recall"][policy] = round(share, 3)
            print(f"| {policy} positives caught by {policy} | {len(chosen)} | {share:.3f} |")
    allowed = [i for i, (_, violates, _) in enumerate(rows) if violates is None]
    for stem in [None, *sorted({rows[i][2] for i in allowed})]:
        chosen = [i for i in allowed if stem is None or rows[i][2] == stem]
        share = sum(flagged[i] for i in chosen) / len(chosen)
        results["allowed_flagged"][stem or "all"] = round(share, 3)
        print(f"| allowed rows of {stem or 'every file'} flagged by any policy | {len(chosen)} | {share:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
