"""Upstream faults: clear OpenAI-style 502/504s, and never a byte of unchecked output."""

import httpx
import openai
import pytest

from shieldkit.guardrails.upstream.stub import ServerThread, create_stub_app

POLICY = """
policies:
  default:
    refusal: "REFUSED."
    output:
      - {name: forbidden, kind: words, words: [forbiddenword]}
"""
MESSAGE = [{"role": "user", "content": "alpha beta gamma delta epsilon."}]


@pytest.fixture
def proxy(make_proxy):
    return make_proxy(POLICY, upstream_timeout=1.0)


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("stub-500", 502, "upstream_error"),
        ("stub-garbage", 502, "upstream_error"),
        ("stub-stall", 504, "upstream_timeout"),
        ("stub-429", 429, "upstream_rate_limited"),
        ("no-such-model", 404, "model_not_found"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failures_before_any_text_are_openai_errors(proxy, model, status, code, stream):
    response = proxy.post("/v1/chat/completions", json={"model": model, "messages": MESSAGE, "stream": stream})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("model", ["stub-drop", "stub-garbage-mid", "stub-cut", "stub-stall-mid"])
def test_a_stream_failing_midway_releases_only_checked_text_then_an_error(proxy, model):
    """The stub sends three words, then fails. None of them ends a sentence, so none was checked: none is sent."""
    received = []
    with pytest.raises(openai.APIError) as error:
        for chunk in proxy.client().chat.completions.create(model=model, messages=MESSAGE, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == ""
    assert "upstream" in str(error.value)


def test_checked_text_before_a_midstream_failure_is_kept_and_the_rest_dropped(proxy):
    received = []
    message = [{"role": "user", "content": "One. Two. three four five."}]
    with pytest.raises(openai.APIError):
        for chunk in proxy.client().chat.completions.create(model="stub-drop", messages=message, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) in ("", "One. ", "One. Two. ")  # only whole, checked sentences
    assert "three" not in "".join(received)


def test_a_violation_before_a_midstream_failure_is_refused(proxy):
    message = [{"role": "user", "content": "forbiddenword. b c d e"}]
    chunks = list(proxy.client().chat.completions.create(model="stub-drop", messages=message, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "REFUSED." and chunks[-1].choices[0].finish_reason == "content_filter"


def test_an_unreachable_upstream_is_a_502(make_proxy):
    server = ServerThread(create_stub_app(), log_level="critical").start()
    url = server.url
    server.stop()  # nothing listens there any more
    proxy = make_proxy(POLICY, upstream=url + "/v1")
    response = proxy.post("/v1/chat/completions", json={"model": "stub", "messages": MESSAGE})
    assert response.status_code == 502 and "cannot reach the upstream" in response.json()["error"]["message"]


def test_an_unexpected_error_is_a_json_500_without_a_traceback(make_proxy):
    class Broken:
        name = "broken"

        async def models(self):
            return ["stub"]

        async def complete(self, request):
            raise ZeroDivisionError("secret internals")

        async def open_stream(self, request):
            raise ZeroDivisionError("secret internals")

        async def aclose(self):
            pass

    proxy = make_proxy(POLICY, upstream_object=Broken())
    for stream in (False, True):
        response = proxy.post("/v1/chat/completions", json={"model": "stub", "messages": MESSAGE, "stream": stream})
        assert response.status_code == 500
        body = response.json()["error"]
        assert body["type"] == "server_error" and response.headers["x-request-id"] in body["message"]
        assert "secret" not in response.text and "Traceback" not in response.text
    assert httpx.get(proxy.url + "/healthz").status_code == 200


def _completion(content: str, usage: str = '{"prompt_tokens": 1, "completion_tokens": 1}') -> str:
    return ('{"id": "x", "object": "chat.completion", "model": "stub-body", "choices": [{"index": 0, "message": '
            f'{{"role": "assistant", "content": {content}}}, "finish_reason": "stop"}}], "usage": {usage}}}')


@pytest.mark.parametrize(("body", "status", "text"), [
    ('{"choices": ' + "[" * 5000 + "]" * 5000 + "}", 502, None),  # too deep for the parser: RecursionError
    (_completion('"fine."', '{"prompt_tokens": 1e999, "completion_tokens": 1}'), 200, "fine."),  # usage = infinity
    (_completion('"smile \\ud83d\\ude00 and \\ud83d."'), 200, "smile \U0001F600 and \ufffd."),  # a lone surrogate
])
def test_odd_upstream_json_is_a_502_or_clean_text_never_a_500(proxy, body, status, text):
    response = proxy.post("/v1/chat/completions", json={"model": "stub-body", "messages": [{"role": "user", "content": body}]})
    assert response.status_code == status, response.text
    if text is None:
        assert response.json()["error"]["code"] == "upstream_error"
    else:
        assert response.json()["choices"][0]["message"]["content"] == text


def test_a_surrogate_pair_split_across_stream_events_is_joined(proxy):
    pieces = '["Hi ", "\\ud83d", "\\ude00 there. Lone ", "\\ud83d"]'  # the stub sends each string as one event
    chunks = proxy.client().chat.completions.create(model="stub-pieces", stream=True,
                                                    messages=[{"role": "user", "content": pieces}])
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Hi \U0001F600 there. Lone \ufffd"


@pytest.mark.parametrize("stream", [False, True])
def test_an_endless_upstream_answer_is_a_502_not_a_memory_blowup(proxy, stream):
    response = proxy.post("/v1/chat/completions", json={"model": "stub-flood", "messages": MESSAGE, "stream": stream})
    if not stream:
        assert response.status_code == 502 and "larger than 16 MiB" in response.json()["error"]["message"]
    else:  # the stream has begun: the error is its last event, and no upstream text was sent
        assert "longer than 1 MiB" in response.text and "xxxx" not in response.text
