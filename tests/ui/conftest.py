import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
SHIELDKIT = str(Path(sys.executable).parent / "shieldkit")
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
    return AppTest.from_file(str(APP), default_timeout=600)  # generous: the tiny model runs in seconds, but CI machines are shared


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"shieldkit ui exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("shieldkit ui did not become healthy in time")


@contextmanager
def ui_server(log_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    """``shieldkit ui --port <free> *args`` with stdin closed (no terminal); yields (url, process)."""
    port = _free_port()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "SHIELDKIT_PROGRESS": "0", **(env or {})}
    with open(log_path, "w") as log:
        process = subprocess.Popen([SHIELDKIT, "ui", "--port", str(port), *args], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process, timeout)
            yield url, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def start_ui():
    """``ui_server`` as a fixture (test modules cannot import conftest under --import-mode=importlib)."""
    return ui_server


@pytest.fixture
def browser():
    """Debian's headless Chromium through Playwright (skipped when it is not installed)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            yield launched
        finally:
            launched.close()


def _wait_idle(page, timeout: float = 180_000) -> None:
    """Until Streamlit's "running" indicator is gone (the script and its fragments finished)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


@pytest.fixture
def attention_chart() -> str:
    """The Attention tab's map once drawn (the Continuation tab has a Vega-Lite chart too, the segment scores)."""
    chart = "[class*='st-key-attention_map'] [data-testid='stVegaLiteChart']"
    return f"{chart} > canvas, {chart} > svg"


@pytest.fixture
def wait_idle():
    return _wait_idle
