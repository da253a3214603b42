import importlib.util
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
_name = "shieldkit_test_toy_classifier"
if _name not in sys.modules:  # shared with tests/debugger (registered there when both folders run)
    _spec = importlib.util.spec_from_file_location(_name, Path(__file__).parents[1] / "debugger" / "toy_classifier.py")
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    sys.modules[_name] = _module


@pytest.fixture
def app(monkeypatch):
    """A fresh AppTest of the debugger on the tiny model (the model itself is cached once per process)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SHIELDKIT_MODEL", "tiny-random")
    monkeypatch.setenv("SHIELDKIT_DTYPE", "float32")
    monkeypatch.setenv("SHIELDKIT_DEVICE", "cpu")
    return AppTest.from_file(str(APP), default_timeout=180)
