"""The one place the UI reaches into the classifiers part (``shieldkit.classifiers``: ``load_classifier`` and
``DEFAULT_POLICIES``).

Code embedding the app (and the tests) can also hand classifiers to a session: put
``{name: factory(runtime) -> SafetyClassifier}`` in ``st.session_state[PROVIDED_KEY]`` before the first run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from shieldkit.classifiers import DEFAULT_POLICIES
from shieldkit.errors import ShieldkitError

if TYPE_CHECKING:
    from shieldkit.classifiers.base import SafetyClassifier
    from shieldkit.model.runtime import GemmaRuntime

PROVIDED_KEY = "shieldkit.provided_classifiers"
PRESET_ENV = "SHIELDKIT_UI_CLASSIFIERS"  # newline-separated classifier folders from `shieldkit ui --classifier`


def default_policies_for(runtime: GemmaRuntime) -> tuple[tuple[str, ...], str | None]:
    """The default policies trained on this runtime's model, and (when some are not) a one-line note saying why
    they are not offered. Reads the safety model's card only; nothing is loaded."""
    from shieldkit.classifiers.registry import SAFETY_ROOT
    from shieldkit.classifiers.storage import read_safety_card

    base = read_safety_card(SAFETY_ROOT).base_model
    if base.get("fingerprint") == runtime.info.fingerprint:
        return tuple(DEFAULT_POLICIES), None
    note = (f"The default policies were trained on {base.get('name')}; this session runs "
            f"{runtime.info.name!r}, so they are not offered. Use a classifier folder trained on this model "
            "(`shieldkit train --model ...`).")
    return (), note


def load(ref: str, runtime: GemmaRuntime) -> SafetyClassifier:
    """A default policy name or a saved classifier folder, on ``runtime``."""
    from shieldkit.classifiers import load_classifier

    return load_classifier(ref, runtime)


def preset_folders() -> list[str]:
    return [line.strip() for line in os.environ.get(PRESET_ENV, "").splitlines() if line.strip()]


def provided(session_state: Mapping) -> Mapping[str, Callable[[GemmaRuntime], SafetyClassifier]]:
    value = session_state.get(PROVIDED_KEY) or {}
    if not isinstance(value, Mapping):
        raise ShieldkitError(f"st.session_state[{PROVIDED_KEY!r}] must map names to factory(runtime) functions")
    return value
