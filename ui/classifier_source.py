"""The one place the UI reaches into the classifiers part (``shieldkit.classifiers.load_classifier`` and
``DEFAULT_POLICIES``). When that part is not installed the UI says so and offers only what it can.

Code embedding the app (and the tests) can also hand classifiers to a session: put
``{name: factory(runtime) -> SafetyClassifier}`` in ``st.session_state[PROVIDED_KEY]`` before the first run.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from shieldkit.errors import ShieldkitError

if TYPE_CHECKING:
    from shieldkit.classifiers.base import SafetyClassifier
    from shieldkit.model.runtime import GemmaRuntime

PROVIDED_KEY = "shieldkit.provided_classifiers"
PRESET_ENV = "SHIELDKIT_UI_CLASSIFIERS"  # newline-separated classifier folders from `shieldkit ui --classifier`


class ClassifiersUnavailable(ShieldkitError):
    """The classifiers part is not installed in this build."""


def _api():
    module = importlib.import_module("shieldkit.classifiers")
    load = getattr(module, "load_classifier", None)
    policies = getattr(module, "DEFAULT_POLICIES", None)
    if load is None or policies is None:
        raise ClassifiersUnavailable(
            "classifiers not installed: shieldkit.classifiers has no load_classifier/DEFAULT_POLICIES in this build"
        )
    return load, tuple(policies)


def unavailable_reason() -> str | None:
    """None when classifiers can be loaded, else why not (one line)."""
    try:
        _api()
    except ClassifiersUnavailable as exc:
        return str(exc)
    except ImportError as exc:
        return f"classifiers not installed: {exc}"
    return None


def default_policies() -> tuple[str, ...]:
    return _api()[1] if unavailable_reason() is None else ()


def default_policies_for(runtime: GemmaRuntime) -> tuple[tuple[str, ...], str | None]:
    """The default policies trained on this runtime's model, and (when some are not) a one-line note saying why
    they are not offered. Reads the safety model's card only; nothing is loaded."""
    from shieldkit.classifiers.registry import SAFETY_ROOT
    from shieldkit.classifiers.storage import read_safety_card

    names = default_policies()
    base = read_safety_card(SAFETY_ROOT).base_model if names else {}
    if base.get("fingerprint") == runtime.info.fingerprint:
        return tuple(names), None
    note = None
    if names:
        note = (f"The default policies were trained on {base.get('name')}; this session runs "
                f"{runtime.info.name!r}, so they are not offered. Use a classifier folder trained on this model "
                "(`shieldkit train --model ...`).")
    return (), note


def load(ref: str, runtime: GemmaRuntime) -> SafetyClassifier:
    """A default policy name or a saved classifier folder, on ``runtime``."""
    load_classifier, _ = _api()
    return load_classifier(ref, runtime)


def preset_folders() -> list[str]:
    return [line.strip() for line in os.environ.get(PRESET_ENV, "").splitlines() if line.strip()]


def provided(session_state: Mapping) -> Mapping[str, Callable[[GemmaRuntime], SafetyClassifier]]:
    value = session_state.get(PROVIDED_KEY) or {}
    if not isinstance(value, Mapping):
        raise ShieldkitError(f"st.session_state[{PROVIDED_KEY!r}] must map names to factory(runtime) functions")
    return value
