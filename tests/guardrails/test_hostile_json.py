"""Hostile JSON is a 400 naming the problem, never a 500; and after any 500 a pooled client's connection is not
left to die (``Connection: close``), tested against a real uvicorn server on loopback with a keep-alive client."""

import json

import httpx
import pytest

from shieldkit.guardrails.api.errors import InvalidRequest
from shieldkit.guardrails.api.request_json import MAX_DEPTH, decode_json

HEAD = '{"model": "stub", "messages": [{"role": "user", "content": "hi"}]'


def body(extra: str) -> bytes:
    return (HEAD + extra + "}").encode()


@pytest.mark.parametrize(
    ("raw", "param", "fragment"),
    [
        (body(', "seed": ' + "1" * 4301), "seed", "4301 digits"),  # past Python's int parsing limit
        (body(', "seed": ' + str(2**64)), "seed", "64-bit range"),  # parses, but no upstream takes it
        (body(', "seed": -' + "9" * 30), "seed", "64-bit range"),
        (body(', "max_tokens": ' + "9" * 100), "max_tokens", "64-bit range"),
        (body(', "user": ' + "[" * 1000 + "]" * 1000), None, f"more than {MAX_DEPTH} levels deep"),  # RecursionError
        (body(', "user": ' + '{"a":' * 100_000 + "1" + "}" * 100_000), None, "levels deep"),
        (body(', "temperature": 1e400'), "temperature", "beyond the range of a 64-bit float"),
        (body(', "temperature": -1e999'), "temperature", "beyond the range"),
        (body(', "temperature": NaN'), "temperature", "NaN is not a JSON number"),
        (body(', "top_p": Infinity'), "top_p", "Infinity is not a JSON number"),
        (b'{"model": "stub", "model": "other", "messages": []}', "model", "appears more than once"),
        (b'{"model": "stub", "messages": [{"role": "user", "role": "system", "content": "x"}]}', "messages[0].role",
         "appears more than once"),
        (b"NaN", None, "NaN is not a JSON number"),
    ],
)
def test_hostile_json_is_a_400_naming_the_problem(rules_proxy, raw, param, fragment):
    before = len(rules_proxy.stub_app.state.received)
    response = rules_proxy.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json"
    assert fragment in error["message"] and error["param"] == param
    assert len(rules_proxy.stub_app.state.received) == before


def test_the_same_body_checks_guard_every_endpoint(rules_proxy):
    for path in ("/v1/check", "/v1/moderations"):
        response = rules_proxy.post(path, content=b'{"text": "a", "text": "b"}', headers={"content-type": "application/json"})
        assert response.status_code == 400 and "appears more than once" in response.json()["error"]["message"]


def test_limits_are_exact_and_strings_do_not_count_as_nesting():
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert decode_json(f'{{"a": {nested}}}'.encode())["a"]  # exactly MAX_DEPTH levels
    with pytest.raises(InvalidRequest):
        decode_json(f'{{"a": [{nested}]}}'.encode())
    brackets = "[{" * 500 + '\\"' + "]}" * 10
    assert decode_json(json.dumps({"a": brackets}).encode()) == {"a": brackets}
    edges = {"low": -(2**63), "high": 2**63 - 1, "big": 1.7e308, "tiny": 5e-324}
    assert decode_json(json.dumps(edges).encode()) == edges
    with pytest.raises(InvalidRequest, match="64-bit range"):
        decode_json(json.dumps({"high": 2**63}).encode())


class Broken:
    """An upstream that fails the way a bug would (not an UpstreamError): the proxy's 500 path."""

    name = "broken"

    async def models(self):
        return ["stub"]

    async def complete(self, request):
        raise ZeroDivisionError("secret internals")

    async def open_stream(self, request):
        raise ZeroDivisionError("secret internals")

    async def aclose(self):
        pass


def test_after_a_500_a_pooled_client_keeps_working(make_proxy):
    """Before: uvicorn closed the kept-alive connection after the 500 without saying so, and the pooled client's
    next request failed with ECONNRESET. Now every 500 says ``Connection: close``, so the client never reuses it."""
    proxy = make_proxy("policies:\n  default: {}\n", upstream_object=Broken())
    request = {"model": "stub", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=proxy.url, timeout=10) as client:  # keep-alive pool
        for round_ in range(20):
            failed = client.post("/v1/chat/completions", json={**request, "stream": round_ % 2 == 1})
            assert failed.status_code == 500 and failed.headers["connection"] == "close"
            assert failed.json()["error"]["type"] == "server_error" and "secret" not in failed.text
            assert client.get("/healthz").status_code == 200  # the next pooled request: never ECONNRESET
            assert client.get("/healthz").headers.get("connection") != "close"  # other answers keep the connection


def test_unterminated_strings_are_scanned_once_not_from_every_quote(rules_proxy):
    """Brackets inside a closed string, then many escaped quotes and no closing one: the depth scan must not
    rescan the rest of the text from each quote (it did: quadratic, about an hour for a 1 MB body)."""
    from shieldkit.guardrails.api.request_json import _STRING_OR_BRACKET

    tail = '\\"' * 20_000
    assert [m.group() for m in _STRING_OR_BRACKET.finditer('"' + tail)] == ['"' + tail]  # one match, to the end
    raw = ('"' + "[" * (MAX_DEPTH + 1) + '" ' + tail).encode()
    response = rules_proxy.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_a_client_that_leaves_mid_body_is_not_a_server_error(rules_proxy, caplog):
    import socket
    import time

    host, port = rules_proxy.url.removeprefix("http://").split(":")
    before = len(rules_proxy.stub_app.state.received)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n" + HEAD.encode()[:20])
    counted = 'shieldkit_requests_total{endpoint="/v1/chat/completions",status="400"} 1.0'
    deadline = time.monotonic() + 10  # the server notices the closed socket on its next read
    while counted not in httpx.get(rules_proxy.url + "/metrics").text and time.monotonic() < deadline:
        time.sleep(0.02)
    metrics = httpx.get(rules_proxy.url + "/metrics").text
    assert counted in metrics and 'status="500"' not in metrics
    assert "unexpected error" not in caplog.text
    assert len(rules_proxy.stub_app.state.received) == before
