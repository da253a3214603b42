"""The proxy's one link to ``shieldkit.classifiers`` (no other module in ``guardrails/`` imports it).

What a policy's ``classifier:`` reference names is decided by the classifiers package (``registry.resolve``, the
one resolver: a default classifier's name, or a saved classifier folder relative to the policy file). Here: the load
plan (which classifiers to load, which cannot load and may be skipped), loading them as one bank that shares the
safety model, their calibrated thresholds, and scoring a batch of texts under every loaded head at once (the heads
cost a dot product each; the pass through the safety model is shared).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldkit import classifiers
from shieldkit.classifiers.base import ClassifierBank
from shieldkit.errors import ConfigError

log = logging.getLogger("shieldkit.guardrails")
BankLoader = Callable[[Sequence[str], Any], ClassifierBank]  # (refs, runtime) -> bank, like classifiers.load_bank
DEFAULT_CLASSIFIERS: tuple[str, ...] = tuple(classifiers.DEFAULT_POLICIES)


@dataclass(frozen=True)
class ClassifierUse:
    """One classifier check of a guardrail policy."""

    ref: str  # as written in the policy file
    policy: str
    direction: str
    check: str
    threshold: float | None  # the check's own threshold, None: the classifier's calibrated one
    blocking: bool  # on_error: block

    @property
    def label(self) -> str:
        return f"{self.policy}/{self.direction}/{self.check}"


def classifier_uses(policies) -> list[ClassifierUse]:
    """Every classifier check of a loaded policy file (a ``LoadedPolicies``), in file order."""
    return [ClassifierUse(config.classifier, policy, direction, config.name, config.threshold, config.on_error == "block")
            for policy, direction, config in policies.classifier_checks()]


def safety_model_loader(folder: Path) -> BankLoader:
    """A bank loader whose heads read the safety model saved in ``folder`` instead of the committed one (a
    retrained safety model, or one made for another base Gemma such as the tiny test model)."""

    def load_bank(refs: Sequence[str], runtime) -> ClassifierBank:
        return classifiers.load_bank(refs, runtime, safety=classifiers.load_safety_model(runtime, folder))

    return load_bank


@dataclass
class LoadPlan:
    """Which classifiers to load, decided before anything loads. A classifier is keyed by its resolved folder."""

    keys: dict[str, str] = field(default_factory=dict)  # ref as written -> key
    load: dict[str, str] = field(default_factory=dict)  # key -> ref to load (a default name, or the folder)
    unavailable: dict[str, str] = field(default_factory=dict)  # key -> why it cannot load (on_error: allow only)
    blocking: set[str] = field(default_factory=set)  # keys some check uses with on_error: block

    @classmethod
    def from_uses(cls, uses: Sequence[ClassifierUse], base_dir: Path, source: str) -> LoadPlan:
        """Refuses (ConfigError) a classifier that cannot be found and that some check blocks on."""
        plan, users = cls(), {}
        for use in uses:
            if use.ref not in plan.keys:
                try:
                    folder = classifiers.resolve(use.ref, base_dir)
                except ConfigError as exc:
                    plan.keys[use.ref] = use.ref
                    plan.unavailable[use.ref] = str(exc)
                else:
                    key = str(folder.resolve())
                    plan.keys[use.ref] = key
                    plan.load.setdefault(key, use.ref if use.ref in DEFAULT_CLASSIFIERS else key)
            key = plan.keys[use.ref]
            users.setdefault(key, []).append(use.label)
            if use.blocking:
                plan.blocking.add(key)
        fatal = [f"classifier check(s) {', '.join(users[key])} cannot run: {why} (on_error: block)"
                 for key, why in plan.unavailable.items() if key in plan.blocking]
        if fatal:
            raise ConfigError(f"{source}: " + "; ".join(fatal))
        for key, why in plan.unavailable.items():
            log.warning("UNAVAILABLE classifier checks %s: %s. They have on_error: allow, so texts pass them "
                        "unchecked and every request reports them as errored.", ", ".join(users[key]), why)
        return plan


@dataclass(frozen=True)
class LoadedBank:
    """The loaded classifiers. ``score`` runs in the scorer's worker thread."""

    bank: ClassifierBank
    names: dict[str, str]  # key -> head name (the classifier's category, e.g. hate)
    thresholds: dict[str, float]  # key -> calibrated threshold
    identity: str  # what the scores depend on (safety model, heads); part of every score cache key

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        """{head: probability} per text, for every loaded head; refuses scores that are missing or outside [0, 1]."""
        heads = list(dict.fromkeys(self.names.values()))
        raw = self.bank.score(texts, heads)
        columns: dict[str, list[float]] = {}
        for head in heads:
            values = raw.get(head) if isinstance(raw, Mapping) else None
            if values is None or len(values) != len(texts):
                raise ValueError(f"the classifier bank returned no scores or the wrong number of scores for {head!r}")
            floats = [float(v) for v in values]
            if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in floats):
                raise ValueError(f"the classifier bank returned scores outside [0, 1] for {head!r}")
            columns[head] = floats
        return [{head: columns[head][i] for head in heads} for i in range(len(texts))]


def load(plan: LoadPlan, runtime, loader: BankLoader | None = None) -> LoadedBank:
    """Load every classifier of ``plan`` as one bank on ``runtime`` (``loader`` replaces ``load_bank``)."""
    keys, refs = list(plan.load), list(plan.load.values())
    bank = (loader or classifiers.load_bank)(refs, runtime)
    loaded = list(bank.classifiers)  # load_bank keeps the order of the refs
    if len(loaded) != len(refs):
        raise ConfigError(f"the classifier bank loaded {len(loaded)} classifiers for {len(refs)} references")
    names = dict(zip(keys, loaded))
    thresholds = {key: float(bank.classifiers[name].threshold) for key, name in names.items()}
    return LoadedBank(bank, names, thresholds, bank_identity(bank))


def bank_identity(bank: ClassifierBank) -> str:
    """A digest of everything a score depends on: the safety model's fingerprint, the precision it scores in
    (float32, bfloat16, mixed or int8: SHIELDKIT_CLASSIFIER_PRECISION) and each head's card and weights. A bank of another kind (a
    test's, an embedder's) is identified by the object itself."""
    from shieldkit.classifiers.bank import GemmaBank

    if not isinstance(bank, GemmaBank):
        return f"{type(bank).__qualname__}@{id(bank):x}"
    digest = hashlib.sha256(f"{bank.safety.card.fingerprint}/{bank.safety.precision}".encode())
    for name, head in sorted(bank.classifiers.items()):
        digest.update(repr((name, head.card.to_dict())).encode())
        for tensor in head.head.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
