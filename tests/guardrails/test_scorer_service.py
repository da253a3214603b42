"""The classifier scorer as its own service (``create_scorer_app``) and proxies pointed at it by URL, on loopback
with a fake bank: its JSON API and errors, the same answers as the in-process scorer, and the same failure
semantics (unreachable, timing out, failing or loading: a clean 503; its full queue: 429 with Retry-After)."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shieldkit.errors import ConfigError
from shieldkit.guardrails.scoring.service import create_scorer_app
from shieldkit.guardrails.scoring.service_settings import ScorerSettings
from shieldkit.guardrails.settings import ProxySettings
from shieldkit.guardrails.upstream.stub import ServerThread

POLICY = """
default_policy: default
policies:
  default:
    input:
      - {name: hate, kind: classifier, classifier: hate}
      - {name: violence, kind: classifier, classifier: violence, threshold: 0.01, action: flag}
    output:
      - {name: hate_out, kind: classifier, classifier: hate}
  rules_only:
    input:
      - {name: words, kind: words, words: [zzz]}
"""
CHAT = {"model": "stub", "messages": [{"role": "user", "content": "hello there"}]}


def wait_until(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(0.01)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Scorer:
    def __init__(self, server: ServerThread, app, holder: dict) -> None:
        self.server, self.app, self.holder, self.url = server, app, holder, server.url

    @property
    def bank(self):
        return self.holder["bank"]

    def post(self, body, **kwargs) -> httpx.Response:
        return httpx.post(self.url + "/v1/score", json=body, timeout=30, **kwargs)


@pytest.fixture
def make_scorer(tmp_path, fakes, tiny_runtime):
    """make_scorer(policy_yaml=POLICY, loader=None, wait=True, **settings) -> a started scorer service on a fake bank."""
    started: list[ServerThread] = []

    def make(policy: str = POLICY, *, loader=None, wait: bool = True, **settings) -> Scorer:
        path = tmp_path / f"scorer-policy{len(started)}.yaml"
        path.write_text(policy)
        holder: dict = {}
        app = create_scorer_app(ScorerSettings.create(policy=path, **settings), runtime=tiny_runtime,
                                bank_loader=loader(holder) if loader else fakes.loader(holder))
        server = ServerThread(app, log_level="critical").start()
        started.append(server)
        scorer = Scorer(server, app, holder)
        if wait:
            wait_until(lambda: httpx.get(scorer.url + "/readyz").status_code == 200, what="scorer ready")
        return scorer

    yield make
    for server in started:
        server.stop()


def gated_loader(fakes, gate: threading.Event, entered: list):
    """A fake bank whose every call waits for ``gate``; ``entered`` collects the texts of calls begun."""

    def loader(holder):
        inner = fakes.loader(holder)

        def load(refs, runtime):
            bank = inner(refs, runtime)
            score = bank.score

            def held(texts, policies=None):
                entered.append(list(texts))
                gate.wait(30)
                return score(texts, policies)

            bank.score = held
            return bank

        return load

    return loader


def test_the_service_scores_what_it_can_and_names_what_it_cannot(make_scorer):
    scorer = make_scorer()
    answer = scorer.post({"texts": ["some vilehate here", "tea"], "classifiers": ["hate", "violence", "nope"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["classifier"], r["head"], r["threshold"], r["scores"]) for r in body["results"]] == [
        ("hate", "hate", 0.5, [0.97, 0.02]), ("violence", "violence", 0.5, [0.02, 0.02])]
    assert "names no classifier 'nope'" in body["unavailable"]["nope"] and body["identity"]
    everything = scorer.post({"texts": ["tea"]}).json()  # classifiers: null asks for every loaded one
    assert [r["classifier"] for r in everything["results"]] == ["hate", "violence"]
    listed = httpx.get(scorer.url + "/v1/classifiers").json()
    assert [(r["head"], r["scores"]) for r in listed["results"]] == [("hate", []), ("violence", [])]
    assert len(scorer.bank.calls) == 1  # "tea" came from the score cache the second time
    metrics = httpx.get(scorer.url + "/metrics").text
    assert "shieldkit_scorer_batch_texts_count 1.0" in metrics and "shieldkit_scorer_batch_texts_sum 2.0" in metrics
    assert 'shieldkit_scorer_requests_total{status="200"} 2.0' in metrics
    assert httpx.get(scorer.url + "/readyz").json()["classifiers"] == {"hate": "hate", "violence": "violence"}


def test_bad_calls_get_openai_style_errors(make_scorer):
    scorer = make_scorer(max_texts=2, api_key="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = scorer.post({"texts": ["a"]}, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    cases = [({"texts": "a"}, 400, "texts"), ({"texts": ["a"], "extra": 1}, 400, "extra"),
             ({"texts": ["a", "b", "c"]}, 413, "texts")]
    for body, status, param in cases:
        response = scorer.post(body, headers=auth)
        assert response.status_code == status and response.json()["error"]["param"] == param, response.text
    empty = httpx.post(scorer.url + "/v1/score", content=b"", headers=auth)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_request"
    assert httpx.get(scorer.url + "/nowhere").json()["error"]["code"] == "not_found"
    assert httpx.get(scorer.url + "/healthz").status_code == 200 and scorer.post({"texts": ["a"]}, headers=auth).status_code == 200


def test_a_proxy_on_the_service_answers_as_the_in_process_scorer_does(make_scorer, make_proxy, fakes, tiny_runtime):
    scorer = make_scorer()
    remote = make_proxy(POLICY, scorer_url=scorer.url)
    local = make_proxy(POLICY, bank_loader=fakes.loader({}), runtime=tiny_runtime)
    assert remote.services.startup.runtime is None  # the proxy loaded no model
    ready = httpx.get(remote.url + "/readyz").json()
    assert ready["scorer"] == scorer.url and ready["classifiers"] == {"hate": "hate", "violence": "violence"}
    for text in ("tea with friends", "so much vilehate", "a stabbing"):
        answers = [proxy.post("/v1/check", json={"text": text}).json() for proxy in (remote, local)]
        assert [(a["decision"], a["blocked_by"]) for a in answers] == [(answers[1]["decision"], answers[1]["blocked_by"])] * 2
        assert [[(c["name"], c["score"], c["threshold"], c["outcome"]) for c in a["checks"]] for a in answers] \
            == [[(c["name"], c["score"], c["threshold"], c["outcome"]) for c in answers[1]["checks"]]] * 2
    moderations = []
    for proxy in (remote, local):
        response = proxy.post("/v1/moderations", json={"input": ["vilehate", "tea"]})
        assert response.status_code == 200, response.text
        moderations.append(response.json()["results"])
    assert moderations[0] == moderations[1] and moderations[0][0]["categories"]["hate"]
    # a policy without classifier checks is moderated by every head of the file, as in-process
    assert [(h.key, h.threshold) for h in remote.services.scorer.heads_for("rules_only")] == [("hate", None), ("violence", None)]
    assert len(local.services.scorer.heads_for("rules_only")) == 2
    reply = remote.post("/v1/chat/completions", json=CHAT)
    assert reply.status_code == 200, reply.text
    assert len(scorer.bank.calls) >= 1


def test_the_services_full_queue_is_a_429_with_retry_after_at_the_proxy(make_scorer, make_proxy, fakes):
    gate, entered = threading.Event(), []
    scorer = make_scorer(loader=gated_loader(fakes, gate, entered), queue_texts=2)
    proxy = make_proxy(POLICY, scorer_url=scorer.url)
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(scorer.post, {"texts": ["occupies the classifiers"]})
            wait_until(lambda: len(entered) == 1)
            queued = pool.submit(scorer.post, {"texts": ["one", "two", "three"]})
            wait_until(lambda: scorer.app.state.service.scorer.scheduler.queued == 3)
            for path, body in (("/v1/chat/completions", CHAT), ("/v1/moderations", {"input": "another"})):
                refused = proxy.post(path, json=body)
                assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1, refused.text
                assert refused.json()["error"]["code"] == "classifier_queue_full"
            gate.set()
            assert first.result().status_code == 200 and queued.result().status_code == 200
        assert proxy.post("/v1/chat/completions", json=CHAT).status_code == 200
    finally:
        gate.set()


def assert_fails_closed(proxy, reason: str) -> None:
    """Chat and moderations answer a clean 503 guardrail_error; /v1/check blocks on the errored checks."""
    chat = proxy.post("/v1/chat/completions", json=CHAT)
    assert chat.status_code == 503 and chat.json()["error"]["code"] == "guardrail_error", chat.text
    moderation = proxy.post("/v1/moderations", json={"input": "hello there"})
    assert moderation.status_code == 503 and moderation.json()["error"]["code"] == "guardrail_error", moderation.text
    check = proxy.post("/v1/check", json={"text": "hello there"}).json()
    assert check["decision"] == "block" and check["blocked_by"] == "hate"
    errors = {c["name"]: c["error"] for c in check["checks"]}
    assert set(errors) == {"hate", "violence"} and all(reason in error for error in errors.values()), errors


def test_an_unreachable_service_fails_closed_with_a_clean_503(make_proxy):
    proxy = make_proxy(POLICY, scorer_url=f"http://127.0.0.1:{closed_port()}", scorer_retries=0)
    assert httpx.get(proxy.url + "/readyz").json()["status"] == "ready"  # a scorer outage is not a proxy outage
    assert_fails_closed(proxy, "is unreachable")


def test_a_service_that_does_not_answer_in_time_fails_closed(make_scorer, make_proxy, fakes):
    gate = threading.Event()
    scorer = make_scorer(loader=gated_loader(fakes, gate, []))
    proxy = make_proxy(POLICY, scorer_url=scorer.url, scorer_timeout=0.5)
    try:
        assert_fails_closed(proxy, "did not answer within 0.5 s")
    finally:
        gate.set()


def test_a_failing_or_loading_service_fails_closed(make_scorer, make_proxy, fakes):
    scorer = make_scorer()
    scorer.bank.fail = True
    failing = scorer.post({"texts": ["x"]})
    assert failing.status_code == 500 and failing.json()["error"]["code"] == "scoring_failed"
    assert_fails_closed(make_proxy(POLICY, scorer_url=scorer.url), "answered 500")

    gate = threading.Event()

    def slow_loader(holder):
        def load(refs, runtime):
            gate.wait(30)
            return fakes.loader(holder)(refs, runtime)

        return load

    loading = make_scorer(loader=slow_loader, wait=False)
    try:
        early = loading.post({"texts": ["x"]})
        assert early.status_code == 503 and early.json()["error"]["code"] == "not_ready" and early.headers["retry-after"]
        proxy = make_proxy(POLICY, scorer_url=loading.url)
        assert_fails_closed(proxy, "answered 503")
        gate.set()
        wait_until(lambda: httpx.get(loading.url + "/readyz").status_code == 200, what="scorer ready")
        assert proxy.post("/v1/chat/completions", json=CHAT).status_code == 200  # recovered, nothing to restart
    finally:
        gate.set()


def test_settings_refuse_bad_values_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match="SHIELDKIT_PROXY_SCORER_URL"):
        ProxySettings.create(scorer_url="scorer:8001")
    with pytest.raises(ConfigError, match="scorer_timeout .* must be below check_timeout"):
        ProxySettings.create(scorer_url="http://scorer:8001", scorer_timeout=30, check_timeout=30)
    assert ProxySettings.create(scorer_url="http://scorer:8001/", check_timeout=9).resolved_scorer_timeout == 6
    with pytest.raises(ConfigError, match="SHIELDKIT_SCORER_BATCH_MAX_TEXTS"):
        ScorerSettings.create(batch_max_texts=0)
    rules = tmp_path / "rules.yaml"
    rules.write_text("policies:\n  default:\n    input:\n      - {name: words, kind: words, words: [zzz]}\n")
    with pytest.raises(ConfigError, match="nothing to serve"):
        create_scorer_app(ScorerSettings.create(policy=rules))


@pytest.mark.anyio
async def test_the_scheduler_tells_the_runner_whether_a_batch_holds_admitted_work():
    from shieldkit.guardrails.scoring.scheduler import FairScheduler

    seen = []

    async def run(texts, admitted):
        seen.append((list(texts), admitted))
        return [{"head": 0.5} for _ in texts]

    scheduler = FairScheduler(run, window_s=0, tell_admitted=True)
    await scheduler.submit(["input text"])
    await scheduler.submit(["output text"], admitted=True)
    assert seen == [(["input text"], False), (["output text"], True)]


def test_serve_classifiers_refuses_bad_input_with_one_line(tmp_path, capsys):
    from shieldkit.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("policies:\n  default:\n    outptu: []\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("policies:\n  default:\n    input:\n      - {name: words, kind: words, words: [zzz]}\n")
    for argv, message in ((["--policy", str(bad)], "line 3"), (["--policy", str(rules)], "nothing to serve"),
                          (["--port", "0"], "--port must be between 1 and 65535")):
        assert main(["serve-classifiers", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve-classifiers", "--port", str(busy.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
