"""Real processes on loopback: one ``shieldkit serve-classifiers`` on the tiny Gemma and two ``shieldkit serve``
proxies pointed at it (``--scorer-url``), in front of the stub upstream. The proxies load no model; the service
batches their texts together and scores them as the classifiers package does; killing it makes classifier checks
fail closed with a clean 503, and they recover when it is started again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

POLICY = """
default_policy: default
policies:
  default:
    input:
      - {name: alpha, kind: classifier, classifier: ./heads/alpha}
      - {name: beta, kind: classifier, classifier: ./heads/beta, action: flag}
"""
CHAT = {"model": "stub", "messages": [{"role": "user", "content": "hello there"}]}
START_TIMEOUT = 900.0  # seconds for a process to answer /readyz: importing torch took 114 s of wall time on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def save_tiny_classifiers(runtime, folder: Path) -> None:
    """A safety model for the tiny Gemma (LoRA as initialised: the trunk's own states) and two heads with small
    seeded random weights, saved as ``shieldkit train`` saves them."""
    import torch
    from peft import LoraConfig, get_peft_model_state_dict

    from shieldkit.classifiers.gemma import Calibration, PolicyHead, attach_lora
    from shieldkit.classifiers.safety import HeadCard, HeadClassifier, SafetyCard, SafetyModel
    from shieldkit.classifiers.safety_training import LORA_MODULES
    from shieldkit.classifiers.storage import adapter_fingerprint, save_safety

    info = runtime.info
    config = LoraConfig(r=2, lora_alpha=4.0, lora_dropout=0.0, target_modules=list(LORA_MODULES),
                        layers_to_transform=[1, 2], layers_pattern="layers", bias="none")
    network = attach_lora(runtime, config, seed=0)
    card = SafetyCard(start=1, readout=3, max_tokens=32, fingerprint=adapter_fingerprint(get_peft_model_state_dict(network)),
                      base_model={"name": info.name, "fingerprint": info.fingerprint, "num_layers": info.num_layers,
                                  "hidden_size": info.hidden_size})
    safety = SafetyModel(runtime, card, network)
    save_safety(safety, folder / "safety_model")
    generator = torch.Generator().manual_seed(7)
    for name in ("alpha", "beta"):
        head = PolicyHead(info.hidden_size)
        with torch.no_grad():
            head.weight.copy_(torch.randn(info.hidden_size, generator=generator) * 0.05)
        head_card = HeadCard(policy=name, description=f"tiny test head {name}", threshold=0.99,
                             calibration=Calibration(), safety_model=card.fingerprint)
        HeadClassifier(safety, head_card, head).save(folder / "heads" / name)


class Process:
    """A ``python -m shieldkit`` subprocess serving on a loopback port, its output in a log file."""

    def __init__(self, args: list[str], port: int, log: Path, env: dict[str, str]) -> None:
        self.args, self.port, self.log, self.env = args, port, log, env
        self.url = f"http://127.0.0.1:{port}"
        self.popen: subprocess.Popen | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen([sys.executable, "-m", "shieldkit", *self.args, "--host", "127.0.0.1",
                                           "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self.env)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.args[0]} exited with {self.popen.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.args[0]} not ready within {timeout:g} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, tiny_runtime, stub):
    """(scorer, [proxy, proxy], reference bank): the processes, ready."""
    from shieldkit.classifiers import load_bank, load_safety_model

    folder = tmp_path_factory.mktemp("fleet")
    save_tiny_classifiers(tiny_runtime, folder)
    (folder / "policy.yaml").write_text(POLICY)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "SHIELDKIT_PROGRESS": "0"}
    # the service collects texts for up to a second before a pass, so the two proxies' concurrent checks meet
    scorer_env = {**env, "SHIELDKIT_SCORER_BATCH_WINDOW_MS": "1000"}
    scorer = Process(["serve-classifiers", "--policy", str(folder / "policy.yaml"), "--model", "tiny-random",
                      "--safety-model", str(folder / "safety_model"), "--log-level", "warning"],
                     free_port(), folder / "scorer.log", scorer_env)
    proxies = [Process(["serve", "--policy", str(folder / "policy.yaml"), "--upstream", stub.url + "/v1",
                        "--scorer-url", scorer.url, "--no-audit", "--log-level", "warning"],
                       free_port(), folder / f"proxy{i}.log", env) for i in range(2)]
    try:
        scorer.start().wait_ready()  # first, so the proxies find what it serves when they start (see /readyz)
        for process in proxies:
            process.start()
        for process in proxies:
            process.wait_ready()
        safety = load_safety_model(tiny_runtime, folder / "safety_model")
        reference = load_bank([folder / "heads" / "alpha", folder / "heads" / "beta"], tiny_runtime, safety=safety)
        yield scorer, proxies, reference
    finally:
        for process in (*proxies, scorer):
            process.stop()


def batch_histogram(scorer: Process) -> tuple[float, float]:
    """(passes, texts) so far: the count and sum of shieldkit_scorer_batch_texts."""
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(scorer.url + "/metrics").text)}
    samples = {s.name: s.value for s in families["shieldkit_scorer_batch_texts"].samples}
    return samples["shieldkit_scorer_batch_texts_count"], samples["shieldkit_scorer_batch_texts_sum"]


def moderate(proxy: Process, text: str) -> dict[str, float]:
    """{head: score} of ``text`` from the proxy's /v1/moderations (scores to 6 decimals)."""
    response = httpx.post(proxy.url + "/v1/moderations", json={"input": text}, timeout=120)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    return {name: score for name, score in result["category_scores"].items()
            if name in result["category_applied_input_types"]}  # the categories a classifier scored


def test_two_proxies_share_one_scorer_and_its_batches_combine_their_texts(fleet):
    scorer, proxies, reference = fleet
    for proxy in proxies:
        ready = httpx.get(proxy.url + "/readyz").json()
        assert ready["scorer"] == scorer.url and ready["classifiers"] == {"./heads/alpha": "alpha", "./heads/beta": "beta"}
    combined, rounds = False, 0
    with ThreadPoolExecutor(2) as pool:
        while not combined and rounds < 5:  # the window makes it the first round; the rest is slack for a slow machine
            texts = [f"round {rounds}: a message from proxy {i}" for i in range(2)]
            before = batch_histogram(scorer)
            scores = list(pool.map(moderate, proxies, texts))
            after = batch_histogram(scorer)
            combined = (after[0] - before[0], after[1] - before[1]) == (1, 2)  # one pass held both proxies' texts
            expected = reference.score(texts, ["alpha", "beta"])
            for i, got in enumerate(scores):
                assert got == pytest.approx({"alpha": expected["alpha"][i], "beta": expected["beta"][i]}, abs=1e-5)
            rounds += 1
    assert combined, f"no pass held texts of both proxies in {rounds} rounds"
    passes = batch_histogram(scorer)[0]
    again = moderate(proxies[1], "round 0: a message from proxy 0")  # proxy 0's text: the service's cache answers
    assert again == moderate(proxies[0], "round 0: a message from proxy 0") and batch_histogram(scorer)[0] == passes


def test_killing_the_scorer_fails_classifier_checks_closed_until_it_returns(fleet):
    scorer, proxies, _ = fleet
    assert all(httpx.post(p.url + "/v1/chat/completions", json=CHAT, timeout=60).status_code == 200 for p in proxies)
    scorer.kill()
    for proxy in proxies:
        chat = httpx.post(proxy.url + "/v1/chat/completions", json=CHAT, timeout=60)
        assert chat.status_code == 503 and chat.json()["error"]["code"] == "guardrail_error", chat.text
        moderation = httpx.post(proxy.url + "/v1/moderations", json={"input": "hello there"}, timeout=60)
        assert moderation.status_code == 503 and moderation.json()["error"]["code"] == "guardrail_error"
        assert "unreachable" in httpx.post(proxy.url + "/v1/check", json={"text": "hi"}, timeout=60).json()["checks"][0]["error"]
    scorer.start()
    statuses: set[int] = set()
    deadline = time.monotonic() + START_TIMEOUT
    for proxy in proxies:  # 503 while the service starts and loads, then 200: never a 500, nothing unchecked
        while True:
            status = httpx.post(proxy.url + "/v1/chat/completions", json=CHAT, timeout=60).status_code
            statuses.add(status)
            if status == 200:
                break
            assert time.monotonic() < deadline, f"the proxies did not recover; scorer log:\n{scorer.log.read_text()[-3000:]}"
            time.sleep(0.2)
    assert statuses <= {200, 503}
    scorer.wait_ready()
