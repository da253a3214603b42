"""The one place the proxy touches the classifiers part's loading API.

``shieldkit.classifiers.load_bank(refs, runtime) -> ClassifierBank`` and ``DEFAULT_POLICIES`` are being built on
branch issue-3-classifiers. Until they exist in this install, classifier checks are *unavailable*: the proxy refuses
to start for such a check with ``on_error: block`` and warns loudly (and reports the check as errored on every
request) for ``on_error: allow``. Everything else codes against the protocols in ``classifiers/base.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from shieldkit.guardrails.checks.base import CheckUnavailable

if TYPE_CHECKING:
    from shieldkit.classifiers.base import ClassifierBank

# The names the classifiers part promises; used only to describe refs while that part is not installed.
PROMISED_DEFAULT_POLICIES = ("hate", "harassment", "sexual", "violence", "self_harm", "dangerous", "prompt_injection")

BankLoader = Callable[[Sequence[str], Any], "ClassifierBank"]


class ClassifiersUnavailable(CheckUnavailable):
    """The classifiers part (or one classifier) cannot be loaded; the message says why."""


class ClassifierApi(NamedTuple):
    load_bank: BankLoader
    default_policies: tuple[str, ...]


def classifier_api() -> ClassifierApi:
    try:
        module = importlib.import_module("shieldkit.classifiers")
    except ImportError as exc:
        raise ClassifiersUnavailable(f"shieldkit.classifiers cannot be imported: {exc}") from None
    load_bank = getattr(module, "load_bank", None)
    defaults = getattr(module, "DEFAULT_POLICIES", None)
    if load_bank is None or defaults is None:
        raise ClassifiersUnavailable("this install's shieldkit.classifiers does not provide load_bank and DEFAULT_POLICIES yet")
    return ClassifierApi(load_bank, tuple(defaults))


def is_folder_ref(ref: str) -> bool:
    return Path(ref).is_absolute() or "/" in ref


def ref_problem(ref: str, known_names: Sequence[str]) -> str | None:
    """Why ``ref`` cannot name a classifier (cheap: no loading), or None."""
    if is_folder_ref(ref):
        return None if Path(ref).is_dir() else f"classifier folder {ref} does not exist"
    if ref not in known_names:
        return f"unknown classifier {ref!r}; default policies: {', '.join(known_names)} (or give a classifier folder)"
    return None


def policy_names(bank: ClassifierBank, refs: Sequence[str]) -> dict[str, str]:
    """{ref: policy name in ``bank.classifiers``}. A name ref is its own policy; folder refs are matched in load
    order (``load_bank`` returns classifiers in the order of the refs)."""
    loaded = list(bank.classifiers)
    if len(loaded) != len(refs):
        raise ClassifiersUnavailable(f"the classifier bank loaded {len(loaded)} classifiers for {len(refs)} refs")
    names: dict[str, str] = {}
    for ref, name in zip(refs, loaded):
        names[ref] = ref if ref in bank.classifiers and not is_folder_ref(ref) else name
    return names


def thresholds(bank: ClassifierBank, names: Mapping[str, str]) -> dict[str, float]:
    return {ref: float(bank.classifiers[name].threshold) for ref, name in names.items()}
