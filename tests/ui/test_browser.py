"""End to end: `shieldkit ui` headless on a free port, loaded in Debian's headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
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


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    shieldkit = str(Path(sys.executable).parent / "shieldkit")
    log = open(tmp_path / "ui.log", "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SHIELDKIT_PROGRESS": "0"}
    process = subprocess.Popen([shieldkit, "ui", "--headless", "--port", str(port), "--model", "tiny-random"],
                               stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_heatmap_and_attention_render_in_chromium(server):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(server, wait_until="domcontentloaded")
            page.wait_for_selector(".sk-token", timeout=180_000)
            tokens = page.locator(".sk-text .sk-token")
            assert tokens.count() > 5
            coloured = [tokens.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(tokens.count())]
            assert sum(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in coloured) > 3
            assert "raised" in page.locator(".sk-legend").first.inner_text()
            assert page.locator(".sk-target").count() > 0  # the explained span is marked
            page.screenshot(path=str(ARTIFACTS / "ui-continuation.png"), full_page=True)

            page.get_by_role("tab", name="Attention").click()
            chart = page.locator("[data-testid='stVegaLiteChart']").first
            chart.locator("canvas, svg").first.wait_for(timeout=120_000)
            assert chart.bounding_box()["height"] > 100
            page.screenshot(path=str(ARTIFACTS / "ui-attention.png"), full_page=True)
        finally:
            browser.close()
