"""Fixtures for the guardrail proxy: a real OpenAI-compatible stub upstream on loopback, proxies on loopback built
from a policy text, and a fake classifier bank.

The fake bank implements the ``SafetyClassifier`` / ``ClassifierBank`` protocols of ``classifiers/base.py`` with
trigger words, so proxy tests run on the tiny random Gemma (the committed classifiers need the embedded one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from shieldkit.guardrails import ProxySettings, create_app
from shieldkit.guardrails.upstream.stub import ServerThread, create_stub_app

# A text containing the trigger scores 0.97 under that policy; anything else 0.02.
TRIGGERS = {"hate": "vilehate", "harassment": "loser", "sexual": "explicitsex", "violence": "stabbing",
            "self_harm": "selfharm", "dangerous": "nerveagent", "prompt_injection": "jailbreakme"}


class FakeClassifier:
    def __init__(self, name: str, threshold: float = 0.5) -> None:
        self.name = name
        self.description = f"test policy {name}"
        self.threshold = threshold
        self.capabilities = frozenset()

    def score(self, texts: Sequence[str]) -> list[float]:
        trigger = TRIGGERS.get(self.name, self.name)
        return [0.97 if trigger in text.lower() else 0.02 for text in texts]


class FakeBank:
    """Counts calls, can be slowed down or told to fail."""

    def __init__(self, names: Sequence[str], delay: float = 0.0) -> None:
        self.classifiers = {name: FakeClassifier(name) for name in names}
        self.delay = delay
        self.calls: list[tuple[list[str], list[str]]] = []
        self.fail = False
        self.lock = threading.Lock()

    def score(self, texts: Sequence[str], policies: Sequence[str] | None = None) -> dict[str, list[float]]:
        with self.lock:
            self.calls.append((list(texts), list(policies or self.classifiers)))
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("fake bank failure")
        return {p: self.classifiers[p].score(texts) for p in (policies or self.classifiers)}


def fake_loader(bank_holder: dict, delay: float = 0.0):
    def load(refs, runtime):
        bank_holder["bank"] = FakeBank([Path(r).name if "/" in r else r for r in refs], delay)
        return bank_holder["bank"]

    return load


class Proxy:
    def __init__(self, server: ServerThread, app, audit_path: Path, stub_app=None) -> None:
        self.server = server
        self.app = app
        self.services = app.state.services
        self.audit_path = audit_path
        self.url = server.url
        self.stub_app = stub_app

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(self.url + "/readyz").status_code == 200:
                return
            time.sleep(0.02)
        raise AssertionError(f"proxy not ready: {httpx.get(self.url + '/readyz').text}")

    def client(self, api_key: str = "unused", **options):
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0, timeout=30, **options)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)

    @property
    def bank(self):
        return self.services.scorer.loaded.bank


@pytest.fixture(scope="session")
def stub():
    app = create_stub_app()
    with ServerThread(app, log_level="critical") as server:
        server.app = app
        yield server


def _proxy_factory(directory: Path, stub):
    """``make(policy_yaml, **settings) -> Proxy`` writing its files to ``directory``, and the servers it started."""
    started: list[ServerThread] = []

    def make(policy: str, *, wait: bool = True, runtime=None, embedded: bool = False, bank_loader=None,
             upstream_object=None, **settings) -> Proxy:
        policy_path = directory / f"policy{len(started)}.yaml"
        policy_path.write_text(policy)
        audit_path = directory / f"audit{len(started)}.sqlite3"
        values = {"policy": policy_path, "audit_path": audit_path, "upstream": None if embedded else stub.url + "/v1",
                  "upstream_timeout": 5.0, **settings}
        app = create_app(ProxySettings.create(**values), runtime=runtime, bank_loader=bank_loader, upstream=upstream_object)
        server = ServerThread(app, log_level="critical").start()
        started.append(server)
        proxy = Proxy(server, app, audit_path, stub.app)
        if wait:
            proxy.wait_ready()
        return proxy

    return make, started


@pytest.fixture
def make_proxy(tmp_path, stub):
    """make_proxy(policy_yaml, **settings) -> a started Proxy in front of the stub upstream (``embedded=True``: the
    given runtime as the upstream; ``upstream_object``: any Upstream)."""
    make, started = _proxy_factory(tmp_path, stub)
    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def make_module_proxy(tmp_path_factory, stub):
    """make_proxy for proxies that the tests of one module share (each start costs about a quarter second); only
    for tests that leave the proxy as they found it."""
    make, started = _proxy_factory(tmp_path_factory.mktemp("proxies"), stub)
    yield make
    for server in started:
        server.stop()


RULES_POLICY = """
version: 1
policies:
  default:
    refusal: "REFUSED."
    input:
      - {name: no_injection, kind: regex, patterns: ['ignore (all )?previous instructions']}
      - {name: pii, kind: pii, action: redact, restore: true}
    output:
      - {name: forbidden, kind: words, words: [forbiddenword]}
      - {name: secrets, kind: regex, action: redact, label: SECRET, ignore_case: false, patterns: ['sk-[A-Za-z0-9]{20,}']}
      - {name: shadow, kind: words, action: flag, words: [shadowword]}
"""


@pytest.fixture
def rules_proxy(make_proxy):
    return make_proxy(RULES_POLICY)


@pytest.fixture(scope="module")
def shared_rules_proxy(make_module_proxy):
    """rules_proxy, shared by the tests of one module."""
    return make_module_proxy(RULES_POLICY)


def fake_scorer(policies, holder: dict | None = None, **options):
    """A loaded ClassifierScorer of ``policies`` (a LoadedPolicies) on a FakeBank (``holder["bank"]``)."""
    from shieldkit.guardrails.scoring import ClassifierScorer, ScoringOptions

    holder = {} if holder is None else holder
    scorer = ClassifierScorer.for_policies(policies, ScoringOptions(**options), loader=fake_loader(holder))
    scorer.load(runtime=None)
    return scorer


@pytest.fixture(scope="session")
def fakes():
    """The fake classifier pieces, for tests that build banks themselves."""
    return type("Fakes", (), {"FakeBank": FakeBank, "TRIGGERS": TRIGGERS, "loader": staticmethod(fake_loader),
                              "scorer": staticmethod(fake_scorer)})
