"""Bad requests and access control: precise OpenAI-style 4xx errors, never a 500, nothing forwarded."""

import hashlib
import time

import httpx
import pytest

OK = {"model": "stub", "messages": [{"role": "user", "content": "hi"}]}


def with_(**changes):
    return {**OK, **changes}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "body is empty"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"model": "stub", "messages": [{"role": "user", "content": "caf\xe9"}]}', 400, "not valid UTF-8"),
        (b'{"model": "stub", "messages": [{"role": "user", "content": "\\ud800 lone"}]}', 400, "unpaired UTF-16 surrogate"),
        (with_(messages=[]), 400, "messages"),
        (with_(messages="hi"), 400, "messages"),
        (with_(messages=[{"role": "user", "content": "   "}]), 400, "messages[0].content: must not be empty"),
        (with_(messages=[{"role": "user", "content": "\u200b\u200d\ufeff"}]), 400, "messages[0].content: must not be empty"),
        (with_(messages=[{"role": "user", "content": "\u0000\u0000"}]), 400, "messages[0].content: must not be empty"),
        (with_(messages=[{"role": "user", "content": [{"type": "text", "text": "\u2060"}]}]), 400,
         "messages[0].content: must not be empty"),
        (with_(messages=[{"role": "user", "content": 5}]), 400, "messages[0].content"),
        (with_(messages=[{"role": "user"}]), 400, "missing required parameter 'messages[0].content'"),
        (with_(messages=[{"role": "robot", "content": "x"}]), 400, "messages[0].role"),
        (with_(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]), 400, "only text parts"),
        (with_(stream="yes"), 400, "stream"),
        (with_(temperature="hot"), 400, "temperature"),
        (with_(temperature=3), 400, "temperature"),
        (b'{"model": "stub", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 400,
         "temperature: NaN is not a JSON number"),
        (b'{"model": "stub", "messages": [{"role": "user", "content": "hi"}], "top_p": Infinity}', 400,
         "top_p: Infinity is not a JSON number"),
        (b'{"model": "stub", "messages": [{"role": "user", "content": "hi"}], "presence_penalty": -Infinity}', 400,
         "presence_penalty: -Infinity is not a JSON number"),
        (with_(max_tokens=0), 400, "max_tokens"),
        (with_(n=2), 400, "only n = 1"),
        (with_(stream_options={"include_usage": True}), 400, "only allowed with stream: true"),
        (with_(tools=[{"type": "function"}]), 400, "cannot check tool calls"),
        (with_(logprobs=True), 400, "cannot check log-probabilities"),
        (with_(logprobs=0), 400, "cannot check log-probabilities"),
        (with_(tool_choice="auto"), 400, "cannot check tool calls"),
        (with_(modalities=["text", "audio"]), 400, "cannot check audio"),
        (with_(top_logprobs=2), 400, "cannot check log-probabilities"),
        (with_(frobnicate=1), 400, "unknown parameter 'frobnicate'"),
        ({"messages": OK["messages"]}, 400, "missing required parameter 'model'"),
        (with_(messages=[{"role": "user", "content": "x"}] * 300), 413, "300 entries in 'messages'"),
        (with_(messages=[{"role": "user", "content": "x" * 1_100_000}]), 413, "at most 1000000"),
    ],
)
def test_bad_requests_get_precise_errors(rules_proxy, body, status, fragment):
    before = len(rules_proxy.stub_app.state.received)
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {"json": body}
    response = rules_proxy.post("/v1/chat/completions", **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request_error"
    assert len(rules_proxy.stub_app.state.received) == before


@pytest.mark.parametrize("nothing", [{"logprobs": False}, {"tools": []}, {"tools": None, "tool_choice": "none"},
                                     {"functions": [], "function_call": "none"}, {"top_logprobs": 0, "logprobs": False},
                                     {"logit_bias": {}}, {"modalities": ["text"]}, {"audio": None, "prediction": None}])
def test_parameters_that_ask_for_nothing_are_accepted_and_not_forwarded(shared_rules_proxy, nothing):
    response = shared_rules_proxy.post("/v1/chat/completions", json=with_(**nothing))
    assert response.status_code == 200, response.text
    assert not set(nothing) & set(shared_rules_proxy.stub_app.state.received[-1])


@pytest.mark.parametrize("body", [{"text": "\u200b\u200c"}, {"text": ["ok", "\u0000"]}])
def test_invisible_only_texts_are_empty_for_check_and_moderations(shared_rules_proxy, body):
    response = shared_rules_proxy.post("/v1/check", json=body)
    assert response.status_code == 400 and "non-empty" in response.json()["error"]["message"]
    response = shared_rules_proxy.post("/v1/moderations", json={"input": body["text"]})
    assert response.status_code == 400 and "non-empty" in response.json()["error"]["message"]


def test_an_oversized_chunked_body_is_cut_off(rules_proxy):
    def body():
        yield b'{"model": "stub", "messages": [{"role": "user", "content": "'
        for _ in range(200):
            yield b"x" * 10_000
        yield b'"}]}'

    response = rules_proxy.post("/v1/chat/completions", content=body())  # no Content-Length: chunked
    assert response.status_code == 413 and "limit of 1000000 bytes" in response.json()["error"]["message"]


def test_unknown_routes_and_methods_are_openai_errors(rules_proxy):
    missing = httpx.post(rules_proxy.url + "/v1/completions", json={})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = httpx.get(rules_proxy.url + "/v1/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()


def key_policy(keys: dict[str, str]) -> str:
    entries = "".join(
        f"  - {{id: {kid}, sha256: {hashlib.sha256(key.encode()).hexdigest()}, policy: default{extra}}}\n"
        for kid, (key, extra) in keys.items())
    return "policies:\n  default: {}\n  strict:\n    input:\n      - {name: nothing, kind: words, words: [hi]}\nkeys:\n" + entries


@pytest.fixture
def keyed(make_proxy):
    return make_proxy(key_policy({
        "full": ("sk-full", ""),
        "checker": ("sk-checker", ", scopes: [check]"),
        "limited": ("sk-limited", ", rate_limit: 2/minute"),
        "narrow": ("sk-narrow", ", models: [stub-slow]"),
    }))


def test_api_keys(keyed):
    url = keyed.url + "/v1/chat/completions"
    missing = httpx.post(url, json=OK)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert httpx.post(url, json=OK, headers={"Authorization": "Bearer sk-wrong"}).status_code == 401
    assert keyed.client("sk-full").chat.completions.create(**OK).choices[0].message.content == "hi"
    assert httpx.post(url, json=OK, headers={"api-key": "sk-full"}).status_code == 200  # Azure-style header
    scoped = httpx.post(url, json=OK, headers={"Authorization": "Bearer sk-checker"})
    assert scoped.status_code == 403 and scoped.json()["error"]["type"] == "permission_error"
    assert httpx.post(keyed.url + "/v1/check", json={"text": "hi"}, headers={"Authorization": "Bearer sk-checker"}).status_code == 200
    wrong_model = httpx.post(url, json=OK, headers={"Authorization": "Bearer sk-narrow"})
    assert wrong_model.status_code == 403 and "may not use the model 'stub'" in wrong_model.json()["error"]["message"]


def test_per_key_rate_limit(keyed):
    headers = {"Authorization": "Bearer sk-limited"}
    codes = [httpx.post(keyed.url + "/v1/chat/completions", json=OK, headers=headers).status_code for _ in range(2)]
    limited = httpx.post(keyed.url + "/v1/chat/completions", json=OK, headers=headers)
    assert codes == [200, 200] and limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error" and int(limited.headers["retry-after"]) >= 1
    assert httpx.post(keyed.url + "/v1/chat/completions", json=OK, headers={"Authorization": "Bearer sk-full"}).status_code == 200


def test_requests_while_loading_get_503_then_200(make_proxy, fakes, tiny_runtime):
    import threading

    release = threading.Event()
    inner = fakes.loader({})

    def slow_loader(refs, runtime):
        release.wait(10)
        return inner(refs, runtime)

    policy = "policies:\n  default:\n    input:\n      - {name: hate, kind: classifier, classifier: hate}\n"
    proxy = make_proxy(policy, wait=False, bank_loader=slow_loader, runtime=tiny_runtime)
    early = proxy.post("/v1/chat/completions", json=OK)
    assert early.status_code == 503 and early.json()["error"]["code"] == "not_ready" and early.headers["retry-after"]
    assert httpx.get(proxy.url + "/readyz").status_code == 503
    assert httpx.get(proxy.url + "/healthz").status_code == 200
    release.set()
    proxy.wait_ready()
    assert httpx.get(proxy.url + "/readyz").json()["classifiers"] == {"hate": "hate"}
    assert proxy.post("/v1/chat/completions", json=OK).status_code == 200


def test_a_failed_background_load_is_reported_and_fatal(make_proxy, tiny_runtime):
    def broken_loader(refs, runtime):
        raise OSError("adapter file is corrupt")

    policy = "policies:\n  default:\n    input:\n      - {name: hate, kind: classifier, classifier: hate}\n"
    proxy = make_proxy(policy, wait=False, bank_loader=broken_loader, runtime=tiny_runtime)
    deadline = time.monotonic() + 10
    while proxy.services.startup.state == "loading" and time.monotonic() < deadline:
        time.sleep(0.01)
    ready = httpx.get(proxy.url + "/readyz")
    assert ready.status_code == 503 and "adapter file is corrupt" in ready.json()["error"]
    response = proxy.post("/v1/chat/completions", json=OK)
    assert response.status_code == 503 and response.json()["error"]["code"] == "startup_failed"


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_the_token_limit_goes_upstream_under_the_clients_name(shared_rules_proxy, name):
    """OpenAI's reasoning models refuse max_tokens: a client that says max_completion_tokens means that one."""
    body = {"model": "stub", "messages": [{"role": "user", "content": "hello there"}], name: 50}
    assert shared_rules_proxy.post("/v1/chat/completions", json=body).status_code == 200
    sent = shared_rules_proxy.stub_app.state.received[-1]
    assert sent[name] == 50 and {"max_tokens", "max_completion_tokens"} & set(sent) == {name}


def test_settings_that_contradict_each_other_or_the_environment_name_what_to_change(monkeypatch):
    from shieldkit.errors import ConfigError
    from shieldkit.guardrails import ProxySettings

    with pytest.raises(ConfigError, match=r"^invalid settings: default_max_tokens \(4096\) must be at most max_tokens_limit"):
        ProxySettings.create(default_max_tokens=4096)
    monkeypatch.setenv("SHIELDKIT_PROXY_MODEL", "tiny-random")
    with pytest.raises(ConfigError, match="chosen with SHIELDKIT_MODEL"):
        ProxySettings.create()


def test_models_are_listed_and_retrieved_within_the_keys_rate_limit_and_models(keyed):
    narrow = keyed.client("sk-narrow")
    assert [m.id for m in narrow.models.list()] == ["stub-slow"]
    assert narrow.models.retrieve("stub-slow").id == "stub-slow"
    hidden = httpx.get(keyed.url + "/v1/models/stub", headers={"Authorization": "Bearer sk-narrow"})
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "model_not_found"
    headers = {"Authorization": "Bearer sk-limited"}
    codes = [httpx.get(keyed.url + "/v1/models", headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
