"""Rate limits shared through a real Redis (Debian's redis-server): a key's limit and the failed-key limit hold
across two `shieldkit serve` processes; Redis going away fails closed with a clean 503 (or, when asked, open),
never a 500, and the proxies recover when it is back."""

import hashlib

import httpx
import pytest

from shieldkit.errors import ConfigError
from shieldkit.guardrails import ProxySettings

OK = {"model": "stub", "messages": [{"role": "user", "content": "hi"}]}
RIGHT, WRONG = {"Authorization": "Bearer sk-right"}, {"Authorization": "Bearer sk-wrong"}


def keys_policy(rate_limit: str) -> str:
    return (f"policies:\n  default: {{}}\nkeys:\n  - {{id: app, sha256: {hashlib.sha256(b'sk-right').hexdigest()}, "
            f"policy: default, rate_limit: {rate_limit}}}\n")


def chat(url: str, headers: dict) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=OK, headers=headers, timeout=30)


def test_two_proxy_processes_share_one_redis(serve, redis_server, stub, tmp_path):
    wait_until = serve.wait_until
    policy = tmp_path / "keys.yaml"
    policy.write_text(keys_policy("4/minute"))
    arguments = ("--policy", str(policy), "--upstream", stub.url + "/v1", "--no-audit", "--redis-url", redis_server.url)
    env = {"SHIELDKIT_PROXY_AUTH_FAILURE_LIMIT": "3/minute"}
    first, second = (serve(*arguments, env=env, ready=False) for _ in range(2))
    for process, url in (first, second):
        wait_until(lambda: httpx.get(url + "/readyz").status_code == 200, "proxy ready", process=process)
    urls = [first[1], second[1]]

    # The key's 4/minute holds across both processes: exactly 4 answers of 8 requests sent to them in turn.
    codes = [chat(urls[i % 2], RIGHT).status_code for i in range(8)]
    assert codes == [200] * 4 + [429] * 4
    # So does the failed-key limit of the one client address: 3 invalid keys, then 429 from either process.
    codes = [chat(urls[i % 2], WRONG).status_code for i in range(5)]
    assert codes == [401] * 3 + [429] * 2

    redis_server.kill()  # fail closed: a clean OpenAI-style 503 from both, the process itself stays healthy
    for url in urls:
        for headers in (RIGHT, WRONG):
            response = chat(url, headers)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "rate_limit_unavailable" and error["type"] == "server_error"
            assert "unavailable" in error["message"] and response.headers["retry-after"]
        assert httpx.get(url + "/healthz").status_code == 200

    redis_server.start()  # back, empty: both processes count there again
    for url in urls:
        wait_until(lambda: chat(url, RIGHT).status_code == 200, "the proxy after Redis is back")
    metrics = httpx.get(urls[0] + "/metrics", headers=RIGHT).text
    assert 'shieldkit_rate_limit_storage_errors_total{handling="refused"}' in metrics


@pytest.mark.parametrize("fail_open", [False, True])
def test_an_unreachable_redis_fails_closed_unless_told_to_fail_open(make_proxy, serve, fail_open):
    down = f"redis://127.0.0.1:{serve.free_port()}/0"  # nothing listens there
    proxy = make_proxy(keys_policy("2/minute"), redis_url=down, rate_limit_fail_open=fail_open)
    response = proxy.post("/v1/chat/completions", json=OK, headers=RIGHT)
    if fail_open:
        assert response.status_code == 200  # let through unlimited while the storage is down
        assert proxy.post("/v1/chat/completions", json=OK, headers=WRONG).status_code == 401
    else:
        assert response.status_code == 503 and response.json()["error"]["code"] == "rate_limit_unavailable"
    metrics = proxy.services.metrics.render().decode()  # (/metrics needs the storage too, for its key)
    handling = "allowed" if fail_open else "refused"
    assert f'shieldkit_rate_limit_storage_errors_total{{handling="{handling}"}}' in metrics


@pytest.mark.parametrize(("values", "message"), [
    ({"redis_url": "localhost:6379"}, "redis_url (SHIELDKIT_PROXY_REDIS_URL): Value error, must be a Redis URL"),
    ({"redis_url": "redis://h:6379", "rate_limit_storage": "memcached://h:11211"}, "give the rate-limit storage once"),
    ({"redis_url": "http://user:secret@h"}, "'http://user:***@h'"),
    ({"rate_limit_timeout": 0}, "rate_limit_timeout (SHIELDKIT_PROXY_RATE_LIMIT_TIMEOUT)"),
])
def test_bad_redis_settings_are_refused_naming_the_field(values, message):
    with pytest.raises(ConfigError) as refused:
        ProxySettings.create(**values)
    assert message in str(refused.value) and "secret" not in str(refused.value)
