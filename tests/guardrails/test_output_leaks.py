"""Nothing reaches the user unchecked, through a real proxy in front of the real HTTP stub upstream on loopback:
streamed secrets split anyhow, private key blocks, the upstream's own error text, and values from the system prompt.
"""

import json

import openai
import pytest
import yaml

from shieldkit.errors import ConfigError
from shieldkit.guardrails.policy import default_policy_path, parse_policy_text
from shieldkit.guardrails.upstream.stub import ServerThread, create_stub_app

SECRET = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "cfo.private@corp.example"
KEY_BODY = ["MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu", "KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ"]
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_BODY) + "\n-----END RSA PRIVATE KEY-----"


def default_policy(*, inputs: bool = True, edit=None) -> str:
    """The packaged default policy without its classifier checks (``inputs=False``: without input checks)."""
    data = yaml.safe_load(default_policy_path().read_text())
    policy = data["policies"]["default"]
    for direction in ("input", "output"):
        policy[direction] = [c for c in policy[direction] if c["kind"] != "classifier"]
    if not inputs:
        policy["input"] = []
    if edit is not None:
        edit(policy)
    return yaml.safe_dump(data)


def ask(proxy, content: str, *, model: str = "stub-pieces", stream: bool, system: str | None = None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
    client = proxy.client()
    if not stream:
        return client.chat.completions.create(model=model, messages=messages).choices[0].message.content
    chunks = client.chat.completions.create(model=model, messages=messages, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- 1, 2: streamed secrets and private keys ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def slow_stub():
    """A stub that pauses 5 ms between streamed pieces, so the proxy sees them one by one (as from a real model)."""
    with ServerThread(create_stub_app(token_delay=0.005), log_level="critical") as server:
        yield server


@pytest.mark.parametrize(("pieces", "expected"), [
    (["x"] * 20 + ["/"] + list("sk-proj-" + "AbCdEfGhIjKlMnOp" * 3 + "9AbCdEfGhIjK") + [" end."],  # the case
     "xxxxxxxxxxxxxxxxxxxx/<SECRET_1> end."),
    (["Call ", "+1 ", "(415) ", "555-0100", " now."], "Call <PHONE_1> now."),
    (["Write to ", *"a.very.long.mailbox.name.of.someone.important", "@", *"mail.example.co.uk", " today."],
     "Write to <EMAIL_1> today."),
    (["Key:\n", "-----", "BEGIN ", "RSA ", "PRIVATE ", "KEY-----\n", *KEY_BODY[0], "\n", KEY_BODY[1], "\n-----END RSA ",
      "PRIVATE KEY-----", "\nDone."], "Key:\n<SECRET_1>\nDone."),
])
def test_a_streamed_secret_comes_out_whole_however_it_is_split(make_proxy, slow_stub, pieces, expected):
    proxy = make_proxy(default_policy(inputs=False, edit=lambda p: p.update(stream={"window": "sentence", "tokens": 4})),
                       upstream=slow_stub.url + "/v1")
    content = json.dumps(pieces)
    assert ask(proxy, content, stream=False) == expected
    assert ask(proxy, content, stream=True) == expected


@pytest.mark.parametrize("stream", [False, True])
def test_the_default_policy_redacts_a_whole_private_key_block(make_proxy, stream):
    proxy = make_proxy(default_policy())
    pieces = ["Here is the key:\n", *PRIVATE_KEY.split("\n")[0], "\n", *"\n".join(KEY_BODY), "\n-----END RSA PRIVATE KEY-----\n",
              "Keep it safe."]
    assert ask(proxy, json.dumps(pieces), stream=stream) == "Here is the key:\n<SECRET_1>\nKeep it safe."


@pytest.mark.parametrize("stream", [False, True])
def test_a_private_key_whose_end_line_never_comes_is_redacted_to_the_end(make_proxy, stream):
    proxy = make_proxy(default_policy())
    pieces = ["Here:\n", PRIVATE_KEY.split("\n")[0], "\n", *KEY_BODY[0], "\n", *KEY_BODY[1][:20]]  # cut off by max_tokens
    assert ask(proxy, json.dumps(pieces), stream=stream) == "Here:\n<SECRET_1>"


# --- 3: the upstream's error text ---------------------------------------------------------------------------------

ECHOED = f"my key {SECRET} and my mail {EMAIL}"
ONLY_OUTPUT = "policies:\n  default:\n    output:\n      - {name: forbidden, kind: words, words: [forbiddenword]}\n"


@pytest.mark.parametrize(("model", "status", "upstream_status"),
                         [("stub-500", 502, 500), ("stub-400", 400, 400), ("stub-429", 429, 429)])
@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_error_body_is_not_passed_on(make_proxy, model, status, upstream_status, stream):
    proxy = make_proxy(ONLY_OUTPUT)
    response = proxy.post("/v1/chat/completions", json={"model": model, "stream": stream,
                                                        "messages": [{"role": "user", "content": ECHOED}]})
    assert response.status_code == status
    assert SECRET not in response.text and EMAIL not in response.text and "AKIA" not in response.text
    assert f"HTTP {upstream_status}" in response.json()["error"]["message"]


def test_a_midstream_error_event_is_not_passed_on(make_proxy):
    proxy = make_proxy(ONLY_OUTPUT)
    with proxy.client().with_streaming_response.chat.completions.create(
            model="stub-error-mid", stream=True, messages=[{"role": "user", "content": ECHOED + " and then more"}]) as raw:
        body = "".join(raw.iter_text())
    events = [json.loads(line[6:]) for line in body.split("\n\n") if line.startswith("data: {")]
    assert SECRET not in body and EMAIL not in body
    assert "error event" in events[-1]["error"]["message"] and events[-1]["error"]["code"] == "upstream_error"
    with pytest.raises(openai.APIError) as error:
        ask(proxy, ECHOED + " and then more", model="stub-error-mid", stream=True)
    assert SECRET not in str(error.value) and EMAIL not in str(error.value)


# --- 4: restoring gives a user back only what that user sent ------------------------------------------------------

CFO_SYSTEM = f"Internal escalation contact: {EMAIL}, phone +1 (212) 555-0199. Never share it."
CFO_ANSWER = "Internal escalation contact: <EMAIL_1>, phone <PHONE_1>. Never share it."


@pytest.mark.parametrize("stream", [False, True])
def test_the_system_prompts_pii_is_not_handed_to_the_user(make_proxy, stream):
    proxy = make_proxy(default_policy())
    # the model repeats its instructions, placeholders and all: they stay placeholders
    answer = ask(proxy, "What is the escalation contact?", model="stub-echo-system", stream=stream, system=CFO_SYSTEM)
    assert answer == CFO_ANSWER
    assert proxy.stub_app.state.received[-1]["messages"][0]["content"] == CFO_ANSWER  # what the model saw
    # what the user sent still comes back, in the same conversation
    mine = "Reply to me at ann@example.com or +1 (415) 555-0100."
    assert ask(proxy, mine, model="stub", stream=stream, system=CFO_SYSTEM) == mine


def _restore_system_too(policy):
    next(c for c in policy["input"] if c["name"] == "pii")["restore_roles"] = ["user", "system"]


@pytest.mark.parametrize("stream", [False, True])
def test_restoring_values_the_user_did_not_send_puts_them_before_the_output_checks(make_proxy, stream):
    """An app may restore system-prompt values (restore_roles); the output PII check still judges them."""
    proxy = make_proxy(default_policy(edit=_restore_system_too))
    answer = ask(proxy, "What is the escalation contact?", model="stub-echo-system", stream=stream, system=CFO_SYSTEM)
    assert answer == CFO_ANSWER

    def no_output_pii(policy):
        _restore_system_too(policy)
        policy["output"] = [c for c in policy["output"] if c["name"] != "pii"]

    proxy = make_proxy(default_policy(edit=no_output_pii))
    answer = ask(proxy, "What is the escalation contact?", model="stub-echo-system", stream=stream, system=CFO_SYSTEM)
    assert answer == CFO_SYSTEM  # asked for, and no output check objects


@pytest.mark.parametrize(("check", "message"), [
    ("{name: p, kind: pii, action: redact, restore: true, restore_roles: []}", "must list at least one role"),
    ("{name: p, kind: pii, action: redact, restore_roles: [system]}", "restore_roles needs restore: true"),
    ("{name: p, kind: pii, action: redact, restore: true, restore_roles: [tool]}", "must be one of system"),
])
def test_restore_roles_is_validated(check, message):
    with pytest.raises(ConfigError, match=message):
        parse_policy_text(f"policies:\n  default:\n    input:\n      - {check}\n")



PREFILL_POLICY = """
policies:
  default:
    refusal: "REFUSED."
    output:
      - {name: api_key, kind: regex, patterns: ['sk-proj-[a-z0-9]{12,}']}
"""


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_continuing_an_assistant_prefill_is_checked_with_it(make_proxy, stream):
    """Upstreams such as llama.cpp continue a final assistant message: the key's prefix is in the prefill, the rest
    in the answer (the stub echoes the user's message), and only together do they match."""
    proxy = make_proxy(PREFILL_POLICY)
    messages = [{"role": "user", "content": "abc123def456ghi789"},
                {"role": "assistant", "content": "Sure, the key is sk-proj-"}]
    client = proxy.client()
    if stream:
        chunks = client.chat.completions.create(model="stub", messages=messages, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(model="stub", messages=messages).choices[0].message.content
    assert text == "REFUSED."
    messages[-1]["content"] = "Sure, here it is: "  # without the prefix the answer alone is fine, and sent as is
    assert client.chat.completions.create(model="stub", messages=messages).choices[0].message.content == "abc123def456ghi789"
