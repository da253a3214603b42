"""Schema fuzzing: schemathesis generates requests from the proxy's own published OpenAPI document (valid ones, and
ones that break it) and sends them to a real server on loopback, in front of the stub upstream. None may get a 5xx.

The document drives the fuzzer: every operation it lists is fuzzed, and the more it declares (request bodies, error
responses), the more the run checks: bodies that break a declared schema must be refused with a 4xx
(``negative_data_rejection``) and every answer must match the response schema declared for its status
(``response_schema_conformance``). A second, Hypothesis-only fuzzer sends bodies built from each endpoint's real
parameters, whatever the document says. Both are bounded and derandomised (fixed example counts, Hypothesis'
derandomize, no example database), so they take the same cases, and about the same time, on every run.
"""

import hashlib
import json

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

EXAMPLES = 25  # per operation and generation mode
ODD_KEY = "frobnicate"  # a parameter no endpoint knows
KEY = {"Authorization": "Bearer sk-fuzz"}
POLICY = f"""
policies:
  default:
    refusal: "REFUSED."
    input:
      - {{name: injection, kind: regex, patterns: ['ignore (all )?previous instructions']}}
      - {{name: pii, kind: pii, action: redact, restore: true}}
      - {{name: hate, kind: classifier, classifier: hate}}
      - {{name: violence, kind: classifier, classifier: violence, action: flag}}
    output:
      - {{name: secrets, kind: regex, action: redact, label: SECRET, patterns: ['sk-[A-Za-z0-9]{{20,}}']}}
      - {{name: pii, kind: pii, action: redact}}
      - {{name: forbidden, kind: words, words: [forbiddenword]}}
    stream: {{window: sentence, tokens: 8}}
    audit: {{keep_text: true}}
keys:
  - {{id: fuzzer, sha256: {hashlib.sha256(b"sk-fuzz").hexdigest()}, policy: default}}
"""


@pytest.fixture
def fuzzed(make_proxy, fakes, tiny_runtime):
    return make_proxy(POLICY, bank_loader=fakes.loader({}), runtime=tiny_runtime, auth_failure_limit="off")


def to_the_stub(case) -> None:
    """A valid body's made-up model name becomes the stub's echo model, so valid bodies reach the upstream and the
    output checks (broken bodies are sent as generated: a replaced model could make them valid)."""
    if case.meta.generation.mode.is_positive and isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = "stub"


def declares_input(operation) -> bool:
    """Whether the operation has a body or parameters that negative generation could break."""
    return any(len(getattr(operation, part)) for part in ("body", "query", "headers", "path_parameters", "cookies"))


@schemathesis.check
def rejects_negative_data(ctx, response, case):
    """schemathesis' ``negative_data_rejection``, counting 413 (too many entries, a precise refusal) as rejected."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


def fuzz(operation, mode, url: str, session: requests.Session) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        to_the_stub(case)
        response = case.call(base_url=url, session=session, headers=KEY, timeout=30)
        assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
        case.validate_response(response, checks=[response_schema_conformance, rejects_negative_data], headers=KEY)

    run()


def test_no_request_the_published_schema_describes_gets_a_5xx(fuzzed):
    schema = schemathesis.openapi.from_url(fuzzed.url + "/openapi.json", headers=KEY)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/chat/completions", "POST /v1/moderations", "POST /v1/check", "GET /v1/models", "GET /metrics"}
    with requests.Session() as session:  # one kept-alive connection pool, as a real client has
        for operation in operations:
            fuzz(operation, schemathesis.GenerationMode.POSITIVE, fuzzed.url, session)
            if declares_input(operation):
                fuzz(operation, schemathesis.GenerationMode.NEGATIVE, fuzzed.url, session)


# --- bodies from the endpoints' real parameters, whatever the document declares ---------------------------------

ODD = st.recursive(  # any JSON value, with Python's extras: NaN, Infinity, integers far past 64 bits
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
TEXT = st.text(min_size=1, max_size=40)
FLOAT = st.floats(min_value=0, max_value=1)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "developer"]),
                                 "content": TEXT | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
                                                            min_size=1, max_size=2)})
PLAUSIBLE = {  # bodies an OpenAI client could send
    "/v1/chat/completions": st.fixed_dictionaries(
        {"model": st.just("stub"), "messages": st.lists(MESSAGE, min_size=1, max_size=3)},
        optional={"stream": st.booleans(), "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
                  "max_tokens": st.integers(1, 64), "temperature": FLOAT, "top_p": FLOAT.filter(bool),
                  "seed": st.integers(-(2**63), 2**63 - 1), "n": st.just(1), "presence_penalty": FLOAT,
                  "frequency_penalty": FLOAT, "stop": TEXT | st.lists(TEXT, max_size=4), "user": TEXT,
                  "logprobs": st.sampled_from([None, False])}),
    "/v1/moderations": st.fixed_dictionaries({"input": TEXT | st.lists(TEXT, min_size=1, max_size=3)},
                                             optional={"model": TEXT}),
    "/v1/check": st.fixed_dictionaries({"text": TEXT | st.lists(TEXT, min_size=1, max_size=3)},
                                       optional={"direction": st.sampled_from(["input", "output"]),
                                                 "policy": st.just("default")}),
}
PARAMETERS = {"/v1/chat/completions": ["model", "messages", "stream", "stream_options", "max_tokens", "temperature",
                                       "top_p", "seed", "n", "stop", "user", "tools", "logprobs", ODD_KEY],
              "/v1/moderations": ["input", "model", ODD_KEY], "/v1/check": ["text", "direction", "policy", ODD_KEY]}


@st.composite
def bodies(draw, path: str):
    """A plausible body; often with one parameter holding an arbitrary value; sometimes any JSON value at all."""
    shape = draw(st.sampled_from(["plausible", "one odd value", "one odd value", "anything"]))
    if shape == "anything":
        return draw(ODD)
    body = draw(PLAUSIBLE[path])
    if shape == "one odd value":
        body[draw(st.sampled_from(PARAMETERS[path]))] = draw(ODD)
    return body


@pytest.mark.parametrize("path", list(PLAUSIBLE))
def test_arbitrary_json_bodies_never_get_a_5xx(fuzzed, path):
    """Independent of what the document declares: bodies built from each endpoint's real parameters, plausible or
    with arbitrary values of every JSON type, sent as JSON text."""
    with requests.Session() as session:

        @settings(max_examples=100, derandomize=True, database=None, deadline=None, print_blob=False,
                  suppress_health_check=list(HealthCheck))
        @given(body=bodies(path))
        def run(body) -> None:
            raw = json.dumps(body, allow_nan=True)
            response = session.post(fuzzed.url + path, data=raw, headers={**KEY, "Content-Type": "application/json"},
                                    timeout=30)
            assert response.status_code < 500, f"POST {path} {raw[:300]}: {response.status_code} {response.text[:300]}"

        run()
