"""The multi-label training corpus of the shared safety model: public sets plus the team's examples.

Every row gets one label per default policy: 1 (violates), 0 (allowed) or -1 (unknown: that head is not trained
on the row, e.g. a violent-crime request is not labelled for ``dangerous``). Which rows of which public set count
for which policy is the table ``SETS`` below, one entry per folder of ``../shared/data/training`` (its README has
each set's licence and label meaning). Team-written examples (``policies/<name>/examples.jsonl``) are positives
for their own policy and unknown for the others when labelled 1, allowed for every policy when labelled 0;
``policies/benign.jsonl`` is allowed for every policy.

Evaluation sets (XSTest, InjecGuard, ToxiGen, AdvBench, Giskard, ETHOS, and the team's held-out everyday
messages and multi-sentence requests in ``tests/classifiers/``) are never trained on: any training row
whose normalised text equals one of theirs, or shares its first 48 normalised characters, is dropped and counted.
Rows are split once, by a hash of the normalised text, into ``train`` and ``calibration`` (15 %): the calibration
rows choose each head's threshold and Platt scaling and are never trained on. Both CyberSecEval sets (one is a
machine translation of the other) stay in ``train``, so no translation of a calibration row is trained on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shieldkit.classifiers.registry import DEFAULT_POLICIES, POLICY_ROOT
from shieldkit.errors import DataError

UNKNOWN = -1
CALIBRATION_SHARE = 0.15
EXAMPLE_WEIGHT = 3.0  # a team-written example counts this many public rows in the loss (they target the gaps)
TRAIN_ONLY_SETS = ("cyberseceval-prompt-injection", "SYNTH-cyberseceval-prompt-injection-MT")
BENIGN_FILE = "benign.jsonl"

Labels = dict[str, int]  # policy -> 1 / 0 / -1; policies not named are 0


def violates(*policies: str, unknown: tuple[str, ...] = ()) -> Labels:
    """Positive for ``policies``, unknown for ``unknown``, allowed for the rest."""
    return {**{name: UNKNOWN for name in unknown}, **{name: 1 for name in policies}}


BENIGN: Labels = {}
SKIP = None  # the row is not used at all (neither clearly violating a policy nor clearly allowed)
_PI = "prompt_injection"
_VIOLENT_CRIME = ("acts of violence committed for political or ideological purposes", "assassinations", "assault",
                  "bombings", "domestic violence", "hijackings", "kidnapping", "kidnappings", "murder", "robbery",
                  "terrorism", "violence", "hate crimes", "crimes motivated by disability",
                  "crimes motivated by gender identity", "crimes motivated by race", "crimes motivated by religion",
                  "crimes motivated by sexual orientation", "animal abuse", "animal cruelty", "dog fighting",
                  "cockfighting")
_CRIME = ("arson", "burglary", "child trafficking", "corporate fraud", "credit card fraud", "cyberterrorism",
          "drug crimes", "drug dealing", "drug manufacturing", "drug trafficking", "embezzlement", "financial crimes",
          "fraud", "human trafficking", "identity theft", "labor trafficking", "migrant smuggling", "money laundering",
          "organ trafficking", "ponzi schemes", "property crimes", "pyramid schemes", "shoplifting", "tax evasion",
          "theft", "vandalism", "sex trafficking")


@dataclass(frozen=True)
class SetRule:
    """How one public set's rows are labelled: by the row's ``label`` value, with a fallback."""

    by_label: dict[str, Labels | None] = field(default_factory=dict)
    default: Labels | None = SKIP
    cap: int | None = None  # at most this many rows per label value (seeded sample), for the large benign sets
    row: Callable[[dict], Labels | None] | None = None  # a per-row rule instead of by_label

    def labels(self, row: dict) -> Labels | None:
        if self.row is not None:
            return self.row(row)
        return self.by_label.get(str(row.get("label")), self.default)


def _convabuse(row: dict) -> Labels | None:
    if row["label"] == "not_abusive":
        return BENIGN
    if row["label"] != "abusive":
        return SKIP
    types = set(row.get("abuse_types") or ())
    positive = ["harassment"]
    if types & {"racist", "homophobic", "transphobic", "sexist", "ableist"}:
        positive.append("hate")
    if "sex_harassment" in types:
        positive.append("sexual")
    return violates(*positive, unknown=("hate", "sexual"))


def _counsel(row: dict) -> Labels | None:
    return SKIP if row.get("mentions_self_harm_keywords") else BENIGN


_BENIGN_SET = SetRule(default=BENIGN, cap=1500)
SETS: dict[str, SetRule] = {
    "ailuminate-demo": SetRule(by_label={
        "cse": violates("sexual", unknown=(_PI, "violence")),
        "src": violates("sexual", unknown=(_PI, "violence", "dangerous")),
        "sxc_prn": violates("sexual", unknown=(_PI,)),
        "hte": violates("hate", unknown=(_PI, "harassment")),
        "ssh": violates("self_harm", unknown=(_PI,)),
        "vcr": violates("violence", unknown=(_PI, "dangerous")),
        "iwp": violates("dangerous", unknown=(_PI, "violence")),
        "ncr": violates("dangerous", unknown=(_PI,)),
    }),
    "strongreject-filtered": SetRule(by_label={
        "Hate, harassment and discrimination": violates("hate", unknown=("harassment", "violence")),
        "Illegal goods and services": violates("dangerous"),
        "Non-violent crimes": violates("dangerous"),
        "Sexual content": violates("sexual"),
        "Violence": violates("violence", unknown=("dangerous",)),
    }),
    "davidson-hate-offensive": SetRule(by_label={
        "hate_speech": violates("hate", unknown=("harassment",)),
        "neither": BENIGN,  # offensive_language is casual profanity with a known dialect bias: not used
    }, cap=1500),
    "stormfront-hate": SetRule(by_label={"hate": violates("hate", unknown=("harassment", "violence")),
                                         "noHate": BENIGN}, cap=1500),
    "convabuse": SetRule(row=_convabuse),
    "wiki-talk-toxicity-identity-subset": SetRule(by_label={
        "toxic": violates("harassment", unknown=("hate", "sexual", "violence")), "not_toxic": BENIGN}),
    "deepset-prompt-injections": SetRule(by_label={"injection": violates(_PI, unknown=("hate",)), "benign": BENIGN}),
    "cyberseceval-prompt-injection": SetRule(default=violates(_PI)),
    "SYNTH-cyberseceval-prompt-injection-MT": SetRule(default=violates(_PI)),
    "latent-jailbreak-templates": SetRule(default=violates(_PI, unknown=("hate", "harassment")), cap=200),
    "SYNTH-catqa-en": SetRule(by_label={
        "Illegal Activity": violates("dangerous", unknown=("violence",)),
        "Malware Viruses": violates("dangerous"),
        "Fraud/Deception": violates("dangerous"),
        "Economic Harm": violates("dangerous"),
        "Physical Harm": violates("violence", unknown=("dangerous", "self_harm")),
        "Adult Content": violates("sexual"),
    }),
    "SYNTH-aart": SetRule(by_label={
        **{name: violates("violence", unknown=("dangerous", "hate")) for name in _VIOLENT_CRIME},
        **{name: violates("dangerous", unknown=("violence", "sexual")) for name in _CRIME},
        "rape": violates("violence", unknown=("sexual", "dangerous")),
        "pornography": violates("sexual", unknown=("dangerous",)),
        "prostitution": violates("sexual", unknown=("dangerous",)),
    }),
    "counsel-chat-mental-health-questions": SetRule(row=_counsel),
    "SYNTH-cyberseceval-frr-benign": SetRule(default=BENIGN),
    **{name: _BENIGN_SET for name in (
        "clinc150-benign", "banking77-benign", "hwu64-benign", "sgd-first-user-turns-benign",
        "nq-open-questions-benign", "gsm8k-questions-benign", "wikipedia-identity-sentences-benign")},
    **{name: SetRule(default=BENIGN) for name in (
        "awesome-chatgpt-prompts-benign", "self-instruct-human-benign", "fastchat-bench-questions-benign")},
}

# Licence of each public set (from ../shared/data/training/README.md), for the README and the classifier cards.
LICENCES = {
    "ailuminate-demo": "CC-BY-4.0 (MLCommons)", "strongreject-filtered": "MIT", "davidson-hate-offensive": "MIT",
    "stormfront-hate": "CC-BY-SA-3.0 (Vicomtech)", "convabuse": "CC-BY-4.0 (Curry et al.)",
    "wiki-talk-toxicity-identity-subset": "Apache-2.0", "deepset-prompt-injections": "Apache-2.0",
    "cyberseceval-prompt-injection": "MIT", "SYNTH-cyberseceval-prompt-injection-MT": "MIT",
    "latent-jailbreak-templates": "MIT", "SYNTH-catqa-en": "Apache-2.0", "SYNTH-aart": "CC-BY-4.0 (Google Research)",
    "counsel-chat-mental-health-questions": "MIT", "SYNTH-cyberseceval-frr-benign": "MIT",
    "clinc150-benign": "CC-BY-3.0 (Larson et al.)", "banking77-benign": "CC-BY-4.0 (PolyAI)",
    "hwu64-benign": "CC-BY-4.0 (Liu et al.)", "sgd-first-user-turns-benign": "CC-BY-SA-4.0 (Google Research)",
    "nq-open-questions-benign": "CC-BY-SA-3.0 (Google)", "gsm8k-questions-benign": "MIT",
    "wikipedia-identity-sentences-benign": "Apache-2.0 (text from Wikipedia, CC-BY-SA)",
    "awesome-chatgpt-prompts-benign": "CC0-1.0", "self-instruct-human-benign": "Apache-2.0",
    "fastchat-bench-questions-benign": "Apache-2.0",
}

# Sources of ordinary user traffic (assistant commands, questions, role-play and system prompts, maths, neutral
# sentences, help-seeking): each must meet the false-positive budget on its own (calibration.py). The negatives of
# the toxicity corpora (forum sentences, tweets, talk-page comments) count only in the pool of all benign rows.
EVERYDAY_SOURCES = (
    "clinc150-benign", "banking77-benign", "hwu64-benign", "sgd-first-user-turns-benign", "nq-open-questions-benign",
    "gsm8k-questions-benign", "wikipedia-identity-sentences-benign", "awesome-chatgpt-prompts-benign",
    "self-instruct-human-benign", "fastchat-bench-questions-benign", "counsel-chat-mental-health-questions",
    "SYNTH-cyberseceval-frr-benign", "deepset-prompt-injections", "examples/benign",
)

EVALUATION_SETS: dict[str, Callable[[Path], Iterator[str]]] = {}


def _evaluation(name: str):
    def register(reader):
        EVALUATION_SETS[name] = reader
        return reader
    return register


def _csv_column(path: Path, column: str, delimiter: str = ",") -> Iterator[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=delimiter):
            yield row[column]


@_evaluation("xstest")
def _xstest(root: Path) -> Iterator[str]:
    yield from _csv_column(root / "xstest" / "xstest_prompts.csv", "prompt")


@_evaluation("injecguard")
def _injecguard(root: Path) -> Iterator[str]:
    yield from _csv_column(root / "injecguard" / "injecguard_eval_flat.csv", "text")


@_evaluation("toxigen")
def _toxigen(root: Path) -> Iterator[str]:
    for name in ("toxigen_prompt_sentences.csv", "toxigen_demonstrations.csv"):
        yield from _csv_column(root / "toxigen" / name, "text")


@_evaluation("advbench")
def _advbench(root: Path) -> Iterator[str]:
    yield from _csv_column(root / "advbench" / "harmful_behaviors.csv", "goal")


@_evaluation("giskard-prompt-injections")
def _giskard(root: Path) -> Iterator[str]:
    yield from _csv_column(root / "giskard-prompt-injections" / "prompt_injections.csv", "prompt")


@_evaluation("everyday-messages")
def _everyday(root: Path) -> Iterator[str]:
    """The team's held-out list of everyday messages (tests/classifiers), when this is a source checkout."""
    yield from team_lines("everyday_messages.txt")


@_evaluation("multi-sentence-messages")
def _multi_sentence(root: Path) -> Iterator[str]:
    """The team's held-out multi-sentence requests (tests/classifiers), when this is a source checkout."""
    yield from team_lines("multi_sentence_messages.txt")


def team_lines(name: str) -> Iterator[str]:
    """The lines of one of the team's held-out lists in tests/classifiers (nothing outside a source checkout)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "classifiers" / name
    if path.is_file():
        yield from (line.rstrip("\n") for line in path.open(encoding="utf-8") if line.strip() and not line.startswith("#"))


@_evaluation("ethos")
def _ethos(root: Path) -> Iterator[str]:
    yield from _csv_column(root / "ethos" / "Ethos_Dataset_Binary.csv", "comment", delimiter=";")


def normalise(text: str) -> str:
    """Lower case, whitespace collapsed, surrounding punctuation dropped: the key for de-duplication."""
    return re.sub(r"\s+", " ", text.lower()).strip(" \t\n\"'.,!?;:")


@dataclass
class Corpus:
    texts: list[str]
    labels: np.ndarray  # [N, P] int8: 1, 0 or -1 (unknown), P = len(policies)
    weights: np.ndarray  # [N] float32 loss weight per row
    split: np.ndarray  # [N] "train" / "calibration"
    origin: list[str]  # [N] the set (or examples file) each row came from
    policies: tuple[str, ...] = DEFAULT_POLICIES
    dropped: dict[str, int] = field(default_factory=dict)  # why rows were dropped -> count

    def subset(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def summary(self) -> dict:
        """Counts per split and policy (positives / allowed), and what was dropped."""
        out: dict = {"rows": len(self.texts), "dropped": dict(self.dropped)}
        for split in ("train", "calibration"):
            rows = self.labels[self.subset(split)]
            out[split] = {name: {"violates": int((rows[:, j] == 1).sum()), "allowed": int((rows[:, j] == 0).sum())}
                          for j, name in enumerate(self.policies)}
        return out

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for text, labels, split in zip(self.texts, self.labels.tolist(), self.split.tolist()):
            digest.update(json.dumps([text, labels, split]).encode("utf-8"))
        return digest.hexdigest()


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise DataError(f"{path}, line {number}: expected an object with a string 'text'")
            yield row


def _team_rows(examples_root: Path) -> Iterator[tuple[str, Labels, str]]:
    for name in DEFAULT_POLICIES:
        path = examples_root / name / "examples.jsonl"
        for row in read_jsonl(path):
            label = row.get("label")
            if label not in (0, 1):
                raise DataError(f"{path}: label must be 0 or 1, got {label!r}")
            others = tuple(p for p in DEFAULT_POLICIES if p != name)
            yield row["text"], (violates(name, unknown=others) if label == 1 else BENIGN), f"examples/{name}"
    benign = examples_root / BENIGN_FILE
    if benign.is_file():
        for row in read_jsonl(benign):
            yield row["text"], BENIGN, "examples/benign"


def _public_rows(training_root: Path, seed: int) -> Iterator[tuple[str, Labels, str]]:
    for name, rule in SETS.items():
        path = training_root / name / "data.jsonl"
        if not path.is_file():
            raise DataError(f"training set {name} is missing: {path} (see ../shared/data/training/README.md)")
        groups: dict[str, list[tuple[str, Labels]]] = {}
        for row in read_jsonl(path):
            if (labels := rule.labels(row)) is not SKIP:
                groups.setdefault(str(row.get("label")), []).append((row["text"], labels))
        for value, rows in groups.items():
            if rule.cap is not None and len(rows) > rule.cap:
                keep = np.random.default_rng([seed, *value.encode("utf-8"), *name.encode("utf-8")]).choice(
                    len(rows), rule.cap, replace=False)
                rows = [rows[i] for i in sorted(keep)]
            for text, labels in rows:
                yield text, labels, name


def evaluation_keys(data_root: Path) -> tuple[set[str], set[str]]:
    """(normalised texts, their first 48 characters) of every evaluation set: what training rows must not match."""
    exact, prefixes = set(), set()
    for name, reader in EVALUATION_SETS.items():
        for text in reader(data_root):
            key = normalise(text)
            exact.add(key)
            if len(key) >= 48:
                prefixes.add(key[:48])
    return exact, prefixes


def _split_of(key: str, origin: str) -> str:
    if origin in TRAIN_ONLY_SETS:
        return "train"
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big") / 2**32
    return "calibration" if bucket < CALIBRATION_SHARE else "train"


def build_corpus(data_root: str | Path, examples_root: str | Path = POLICY_ROOT, seed: int = 0) -> Corpus:
    """Read, label, de-duplicate (within, and against every evaluation set) and split the training corpus."""
    data_root, examples_root = Path(data_root), Path(examples_root)
    training_root = data_root / "training"
    if not training_root.is_dir():
        raise DataError(f"no training data at {training_root} (the public sets live in ../shared/data/training)")
    exact, prefixes = evaluation_keys(data_root)
    merged: dict[str, list] = {}  # key -> [text, {policy: label}, weight, origin]
    dropped = {"evaluation overlap": 0, "empty": 0, "duplicate": 0}
    sources = [(row, 1.0) for row in _public_rows(training_root, seed)]
    sources += [(row, EXAMPLE_WEIGHT) for row in _team_rows(examples_root)]
    for (text, labels, origin), weight in sources:
        key = normalise(text)
        if not key:
            dropped["empty"] += 1
            continue
        if key in exact or key[:48] in prefixes:
            dropped["evaluation overlap"] += 1
            continue
        if key not in merged:
            merged[key] = [text, dict(labels), weight, origin]
            continue
        dropped["duplicate"] += 1
        entry = merged[key]
        entry[1] = _merge(entry[1], labels)
        entry[2] = max(entry[2], weight)
    keys = list(merged)
    labels = np.zeros((len(keys), len(DEFAULT_POLICIES)), dtype=np.int8)
    for row, key in enumerate(keys):
        for column, name in enumerate(DEFAULT_POLICIES):
            labels[row, column] = merged[key][1].get(name, 0)
    return Corpus(
        texts=[merged[key][0] for key in keys],
        labels=labels,
        weights=np.array([merged[key][2] for key in keys], dtype=np.float32),
        split=np.array([_split_of(key, merged[key][3]) for key in keys]),
        origin=[merged[key][3] for key in keys],
        dropped=dropped,
    )


def _merge(first: Labels, second: Labels) -> Labels:
    """Per policy: violates if either says so; else allowed if either is sure; else unknown."""
    out = {}
    for name in DEFAULT_POLICIES:
        a, b = first.get(name, 0), second.get(name, 0)
        out[name] = 1 if 1 in (a, b) else (0 if 0 in (a, b) else UNKNOWN)
    return out
