"""Auth and accounting: invalid keys are rate limited per client address, /metrics and the API docs are closed
when keys are configured, rate limits are never silently multiplied by workers, and a failing rate-limit storage
fails closed (503, never a 500)."""

import hashlib

import httpx
import pytest
import uvicorn
from limits.aio.storage import MemoryStorage

from shieldkit.cli import main
from shieldkit.errors import ConfigError
from shieldkit.guardrails import ProxySettings, create_app
from shieldkit.guardrails.ops.ratelimit import require_shared_storage
from shieldkit.guardrails.policy import parse_policy_text

OK = {"model": "stub", "messages": [{"role": "user", "content": "hi"}]}
RIGHT, WRONG = {"Authorization": "Bearer sk-right"}, {"Authorization": "Bearer sk-wrong"}
OPS_PATHS = ("/metrics", "/docs", "/redoc", "/openapi.json")


def keys_policy(rate_limit: str | None = None) -> str:
    extra = f", rate_limit: {rate_limit}" if rate_limit else ""
    return (f"policies:\n  default: {{}}\nkeys:\n  - {{id: app, sha256: {hashlib.sha256(b'sk-right').hexdigest()}, "
            f"policy: default{extra}}}\n")


class SharedStorage(MemoryStorage):
    """Stands in for Redis: every instance (every proxy of a test, like every worker) counts in one place."""

    STORAGE_SCHEME = ["async+shared-test"]
    events: dict = {}

    def __init__(self, uri=None, wrap_exceptions=False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.events = SharedStorage.events


class FailingStorage(MemoryStorage):
    """A storage that is down (Redis unreachable)."""

    STORAGE_SCHEME = ["async+failing-test"]

    async def acquire_entry(self, key, limit, expiry, amount=1):
        raise ConnectionError("storage down")

    async def get_moving_window(self, key, limit, expiry):
        raise ConnectionError("storage down")


def test_invalid_keys_are_rate_limited_per_client_address(make_proxy):
    proxy = make_proxy(keys_policy(), auth_failure_limit="3/minute")
    url = proxy.url + "/v1/chat/completions"
    assert [httpx.post(url, json=OK, headers=WRONG).status_code for _ in range(3)] == [401, 401, 401]
    blocked = httpx.post(url, json=OK, headers=WRONG)
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_invalid_keys"
    assert 1 <= int(blocked.headers["retry-after"]) <= 60 and "127.0.0.1" in blocked.json()["error"]["message"]
    # The address cannot go on testing keys: a right key from it is refused too, so 429 says nothing about the key.
    assert httpx.post(url, json=OK, headers=RIGHT).status_code == 429
    assert httpx.get(proxy.url + "/v1/models", headers=WRONG).status_code == 429  # every keyed endpoint
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as elsewhere:  # another address
        assert elsewhere.post(url, json=OK, headers=RIGHT).status_code == 200
        assert elsewhere.post(url, json=OK, headers=WRONG).status_code == 401


def test_metrics_and_docs_need_a_key_when_keys_are_configured(make_proxy, rules_proxy):
    closed = make_proxy(keys_policy())
    for path in OPS_PATHS:
        assert httpx.get(closed.url + path).status_code == 401, path
        assert httpx.get(closed.url + path, headers=WRONG).status_code == 401, path
        assert httpx.get(closed.url + path, headers=RIGHT).status_code == 200, path
    assert "/v1/chat/completions" in httpx.get(closed.url + "/openapi.json", headers=RIGHT).json()["paths"]
    for path in ("/healthz", "/readyz"):  # health checks stay open
        assert httpx.get(closed.url + path).status_code == 200
    opened = make_proxy(keys_policy(), public_docs_and_metrics=True)
    for proxy in (opened, rules_proxy):  # opened by the setting; or open because there are no keys
        for path in OPS_PATHS:
            assert httpx.get(proxy.url + path).status_code == 200, path


def test_several_workers_are_refused_a_per_process_rate_limit_storage(tmp_path, capsys, monkeypatch):
    """Each worker would count a key's limit alone (``--workers 2`` gave 20 x 200 on a 10/minute key): refused."""

    def start_workers(*args, **kwargs):
        raise AssertionError("the workers were started")

    monkeypatch.setattr(uvicorn, "run", start_workers)  # refusing must come first (and a regression must not hang)
    policy = tmp_path / "keys.yaml"
    policy.write_text(keys_policy("10/minute"))
    command = ["serve", "--workers", "2", "--policy", str(policy), "--upstream", "http://127.0.0.1:9/v1", "--no-audit"]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "2 workers cannot share the rate limits of key(s) app and the failed-key limit" in err
    assert "--rate-limit-storage" in err and "redis://" in err
    policy.write_text(keys_policy())  # no key limit, but the failed-key limit would be per worker too
    assert main(command) == 2 and "cannot share the failed-key limit" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="cannot share"):  # the app itself refuses it, however it is started
        create_app(ProxySettings.create(policy=policy, workers=2, audit=False, upstream="http://127.0.0.1:9/v1"))
    keys = parse_policy_text(keys_policy("10/minute")).file.keys
    require_shared_storage(ProxySettings.create(workers=2, rate_limit_storage="shared-test://"), keys)
    require_shared_storage(ProxySettings.create(workers=1), keys)
    no_limits = parse_policy_text(keys_policy()).file.keys
    require_shared_storage(ProxySettings.create(workers=2, auth_failure_limit="off"), no_limits)


def test_a_shared_storage_holds_a_keys_limit_across_workers(make_proxy):
    SharedStorage.events.clear()
    workers = [make_proxy(keys_policy("3/minute"), rate_limit_storage="shared-test://", workers=2) for _ in range(2)]
    codes = [httpx.post(workers[i % 2].url + "/v1/chat/completions", json=OK, headers=RIGHT).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    SharedStorage.events.clear()


def test_a_failing_rate_limit_storage_fails_closed_with_a_503(make_proxy):
    proxy = make_proxy(keys_policy("5/minute"), rate_limit_storage="failing-test://")
    for headers in (RIGHT, WRONG):
        response = httpx.post(proxy.url + "/v1/chat/completions", json=OK, headers=headers)
        assert response.status_code == 503 and response.json()["error"]["code"] == "rate_limit_unavailable"
        assert response.headers["retry-after"] and response.headers.get("connection") != "close"
    assert httpx.get(proxy.url + "/healthz").status_code == 200


@pytest.mark.parametrize(("uri", "fragment"), [("nosuch://", "unknown storage scheme"),
                                               ("memcached://127.0.0.1:11211", "prerequisite not available"),
                                               ("localhost:6379", "must be a storage URI")])
def test_an_unusable_storage_is_refused_at_start(uri, fragment):
    with pytest.raises(ConfigError, match=fragment):
        create_app(ProxySettings.create(rate_limit_storage=uri, audit=False, upstream="http://127.0.0.1:9/v1"))
