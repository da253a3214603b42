"""The check-only and moderation endpoints, metrics, and the audit log in a real SQLite file (and its CLI)."""

import json
import sqlite3

import httpx
import pytest

from shieldkit.cli import main

POLICY = """
policies:
  default:
    refusal: "REFUSED."
    input:
      - {name: pii, kind: pii, action: redact, restore: true}
      - {name: hate, kind: classifier, classifier: hate}
      - {name: violence, kind: classifier, classifier: violence, threshold: 0.9}
      - {name: self_harm, kind: classifier, classifier: self_harm, action: flag}
    output:
      - {name: forbidden, kind: words, words: [forbiddenword]}
    audit: {keep_text: %s}
"""


@pytest.fixture
def proxy(make_proxy, fakes, tiny_runtime):
    return make_proxy(POLICY % "true", bank_loader=fakes.loader({}), runtime=tiny_runtime)


def test_check_endpoint_reports_every_check(proxy):
    response = proxy.post("/v1/check", json={"text": ["mail a@b.co", "some selfharm talk"], "direction": "input"})
    body = response.json()
    assert response.status_code == 200 and body["decision"] == "redact" and body["blocked_by"] is None
    assert body["texts"] == ["mail <EMAIL_1>", "some selfharm talk"] and body["flagged"] == ["self_harm"]
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["hate"]["score"] == pytest.approx(0.02) and checks["hate"]["threshold"] == 0.5
    assert checks["violence"]["threshold"] == 0.9 and checks["pii"]["findings"][0]["type"] == "EMAIL"
    assert all(c["latency_ms"] >= 0 for c in body["checks"]) and body["latency_ms"] > 0
    blocked = proxy.post("/v1/check", json={"text": "vilehate", "direction": "input"}).json()
    assert blocked["decision"] == "block" and blocked["blocked_by"] == "hate"
    output = proxy.post("/v1/check", json={"text": "forbiddenword", "direction": "output"}).json()
    assert output["blocked_by"] == "forbidden"


def test_moderations_in_openai_shape(proxy):
    result = proxy.client().moderations.create(input=["a calm sentence", "selfharm and stabbing"])
    calm, bad = result.results
    assert not calm.flagged and bad.flagged
    scores = bad.category_scores.model_dump(by_alias=True, exclude_none=True)
    assert scores["self-harm"] == pytest.approx(0.97) and set(scores) >= {"hate", "violence", "self-harm"}
    assert bad.categories.model_dump(by_alias=True, exclude_none=True)["violence"] is True
    assert len(proxy.bank.calls) == 2  # three categories share each pass; one text of a request per pass


def test_moderations_without_classifiers_is_a_clear_503(rules_proxy):
    response = rules_proxy.post("/v1/moderations", json={"input": "hello"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "classifiers_unavailable"


def test_audit_rows_in_sqlite_and_the_audit_command(proxy, capsys):
    client = proxy.client()
    ok = client.chat.completions.with_raw_response.create(model="stub", messages=[{"role": "user", "content": "mail me at z@q.io"}])
    request_id = ok.headers["x-request-id"]
    with pytest.raises(Exception):
        client.chat.completions.create(model="stub", messages=[{"role": "user", "content": "vilehate"}])
    client.chat.completions.create(model="stub", messages=[{"role": "user", "content": "forbiddenword"}])
    proxy.services.audit.flush()

    db = sqlite3.connect(proxy.audit_path)
    rows = db.execute("SELECT request_id, direction, decision, blocked_by, text FROM events ORDER BY id").fetchall()
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("input", "redact", None), ("output", "allow", None),
        ("input", "block", "hate"),
        ("input", "allow", None), ("output", "block", "forbidden"),
    ]
    assert rows[0][0] == rows[1][0] == request_id
    assert rows[0][4] == "user: mail me at <EMAIL_1>"  # kept text is the redacted text
    checks = db.execute("SELECT c.name, c.outcome, c.score FROM checks c JOIN events e ON e.id = c.event_id "
                        "WHERE e.decision = 'block' AND e.direction = 'input'").fetchall()
    assert ("hate", "fired", pytest.approx(0.97)) in [(n, o, s) for n, o, s in checks]

    assert main(["audit", "--db", str(proxy.audit_path), "--decision", "block"]) == 0
    table = capsys.readouterr().out
    assert "hate=0.97" in table and "forbidden" in table and "redact" not in table
    assert main(["audit", "--db", str(proxy.audit_path), "--request-id", request_id, "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["direction"] for e in events} == {"input", "output"}
    assert main(["audit", "--db", str(proxy.audit_path), "--check", "hate", "--fired", "--since", "1h", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_texts_are_not_stored_unless_the_policy_says_so(make_proxy, fakes, tiny_runtime):
    proxy = make_proxy(POLICY % "false", bank_loader=fakes.loader({}), runtime=tiny_runtime)
    proxy.client().chat.completions.create(model="stub", messages=[{"role": "user", "content": "hello"}])
    proxy.services.audit.flush()
    texts = sqlite3.connect(proxy.audit_path).execute("SELECT text FROM events").fetchall()
    assert texts == [(None,), (None,)]


def test_audit_command_errors_are_one_line(tmp_path, capsys):
    assert main(["audit", "--db", str(tmp_path / "none.sqlite3")]) == 2
    assert "no audit log at" in capsys.readouterr().err
    assert main(["audit", "--db", str(tmp_path / "none.sqlite3"), "--since", "yesterday"]) == 2


def test_metrics_count_requests_decisions_and_check_latency(proxy):
    proxy.post("/v1/check", json={"text": "vilehate"})
    metrics = httpx.get(proxy.url + "/metrics").text
    assert 'shieldkit_requests_total{endpoint="/v1/check",status="200"} 1.0' in metrics
    assert 'shieldkit_check_results_total{check="hate",direction="input",outcome="fired"} 1.0' in metrics
    assert 'shieldkit_decisions_total{decision="block",direction="input"} 1.0' in metrics
    assert 'shieldkit_check_latency_seconds_count{check="pii",direction="input"} 1.0' in metrics
    assert "shieldkit_ready 1.0" in metrics


def test_moderations_carry_all_of_openais_categories_and_accept_text_parts(proxy):
    from shieldkit.guardrails.api.routers.moderations import OPENAI_CATEGORIES

    result = proxy.client().moderations.create(input=[{"type": "text", "text": "selfharm and"},
                                                      {"type": "text", "text": "stabbing"}])
    assert len(result.results) == 1  # a list of parts is one input
    only = result.results[0]
    categories = only.categories.model_dump(by_alias=True)
    assert set(OPENAI_CATEGORIES) <= set(categories) and None not in categories.values()
    assert categories["self-harm"] is True and categories["sexual/minors"] is False
    applied = only.category_applied_input_types.model_dump(by_alias=True, exclude_none=True)
    assert applied["self-harm"] == ["text"] and "sexual/minors" not in applied  # no classifier scored it
    image = proxy.post("/v1/moderations", json={"input": [{"type": "image_url", "image_url": {"url": "x"}}]})
    assert image.status_code == 400 and "only text parts" in image.json()["error"]["message"]
