"""The audit log on a real PostgreSQL (Debian's): two `shieldkit serve` processes write one database and
`shieldkit audit` reads the rows of both; pending answers follow their owners' advisory locks; the schema is
versioned and migrated at start, on Postgres and on SQLite files written before it was versioned."""

import json
import signal
import sqlite3
import subprocess
import sys

import httpx
import psycopg
import pytest

from shieldkit.cli import main
from shieldkit.errors import ConfigError
from shieldkit.guardrails.ops.audit import AuditEvent, AuditLog, query
from shieldkit.guardrails.ops.audit_schema import LATEST, TYPES, VERSION_1

POLICY = ("policies:\n  default:\n    input:\n      - {name: no_injection, kind: regex, patterns: ['ignore previous']}\n"
          "    output:\n      - {name: forbidden, kind: words, words: [forbiddenword]}\n")


def chat(url: str, request_id: str, text: str) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", headers={"X-Request-ID": request_id}, timeout=30,
                      json={"model": "stub", "messages": [{"role": "user", "content": text}]})


def event(request_id: str, opens: str | None = None, checks: tuple[str, ...] = ()) -> AuditEvent:
    return AuditEvent(request_id=request_id, key_id=None, policy="default", endpoint="chat", direction="input",
                      decision="allow", blocked_by=None, latency_ms=1.0, opens=opens,
                      checks=[{"name": name, "kind": "words", "action": "block", "outcome": "pass", "score": None,
                               "threshold": None, "latency_ms": 0.1, "error": None} for name in checks])


def test_two_proxy_processes_write_one_postgres_and_the_cli_reads_both(serve, postgres_server, stub, tmp_path,
                                                                       capsys, monkeypatch):
    url = postgres_server.new_database()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    arguments = ("--policy", str(policy), "--upstream", stub.url + "/v1", "--audit-url", url)
    proxies = [serve(*arguments, ready=False) for _ in range(2)]  # both start (and migrate) at once
    for process, base in proxies:
        serve.wait_until(lambda: httpx.get(base + "/readyz").status_code == 200, "proxy ready", process=process)
    sent = {}
    for n, (_, base) in enumerate(proxies):
        for i in range(3):
            request_id = f"req_p{n}_{i}"
            text = "say forbiddenword" if (n, i) == (1, 2) else f"hello {i}"
            assert chat(base, request_id, text).status_code == 200
            sent[request_id] = "block" if (n, i) == (1, 2) else "allow"
    for process, _ in proxies:  # a clean stop writes everything queued
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    assert main(["audit", "--db", url, "--json", "--limit", "100"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((e["request_id"], e["direction"]) for e in rows) == sorted(
        (request_id, direction) for request_id in sent for direction in ("input", "output"))
    outputs = {e["request_id"]: e for e in rows if e["direction"] == "output"}
    assert {request_id: e["decision"] for request_id, e in outputs.items()} == sent
    assert outputs["req_p1_2"]["blocked_by"] == "forbidden" and outputs["req_p1_2"]["checks"][0]["outcome"] == "fired"
    assert all(e["checks"] for e in rows) and not any(e["decision"] in ("pending", "interrupted") for e in rows)

    monkeypatch.setenv("SHIELDKIT_PROXY_AUDIT_URL", url)  # the default of `shieldkit audit`, as of `serve`
    assert main(["audit", "--decision", "block"]) == 0
    table = capsys.readouterr().out
    assert "req_p1_2" in table and "forbidden" in table and "req_p0_0" not in table


def test_pending_answers_follow_their_owners_advisory_locks(postgres_server):
    url = postgres_server.new_database()
    worker, sibling = AuditLog(url), AuditLog(url)
    worker.open()
    worker.record(event("req_in_flight", opens="t1"))
    worker.flush()
    sibling.open()  # starting beside a live worker: its answers in flight stay pending
    assert [e["decision"] for e in query(url)] == ["pending", "allow"]
    worker.close()  # shutting down with the answer still open
    assert [(e["direction"], e["decision"]) for e in query(url)] == [("output", "interrupted"), ("input", "allow")]
    sibling.close()

    script = ("import os, sys; from shieldkit.guardrails.ops.audit import AuditEvent, AuditLog; log = AuditLog(sys.argv[1]); "
              "log.open(); log.record(AuditEvent(request_id='req_dead', key_id=None, policy='default', endpoint='chat', "
              "direction='input', decision='allow', blocked_by=None, latency_ms=1.0, checks=[], opens='t2')); "
              "log.flush(); os._exit(0)")
    subprocess.run([sys.executable, "-c", script, url], check=True, timeout=120)  # dies without closing
    assert [e["decision"] for e in query(url, request_id="req_dead")] == ["interrupted", "allow"]  # told at once
    survivor = AuditLog(url)
    survivor.open()  # ... and recorded by the next process
    survivor.close()
    assert [(e["id"] is not None, e["decision"]) for e in query(url, request_id="req_dead")] == [
        (True, "interrupted"), (True, "allow")]


def test_the_postgres_schema_is_versioned(postgres_server):
    url = postgres_server.new_database()
    log = AuditLog(url)
    log.check()
    with psycopg.connect(url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(LATEST,)]
        db.execute("UPDATE schema_version SET version = %s", (LATEST + 1,))
    with pytest.raises(ConfigError, match=f"schema version {LATEST + 1}, newer than this shieldkit knows"):
        AuditLog(url).check()
    with pytest.raises(ConfigError, match="newer than this shieldkit reads"):
        query(url)
    with pytest.raises(ConfigError, match=r"cannot open the audit log postgresql://shieldkit:\*\*\*@127.0.0.1:1/none: "
                       "connection failed") as refused:  # before the server starts, without the password
        AuditLog("postgresql://shieldkit:secret@127.0.0.1:1/none").check()
    assert "secret" not in str(refused.value)


def test_a_sqlite_file_from_before_versioning_is_read_and_migrated(tmp_path):
    path = tmp_path / "audit.sqlite3"
    db = sqlite3.connect(path)  # the tables as unversioned proxies wrote them, with one event of three checks
    db.executescript(VERSION_1.format(**TYPES["sqlite"]))
    db.execute("INSERT INTO events (request_id, time, policy, endpoint, direction, decision, latency_ms) "
               "VALUES ('req_old', 1.0, 'default', 'chat', 'input', 'allow', 1.0)")
    db.executemany("INSERT INTO checks (event_id, name, kind, action, outcome) VALUES (1, ?, 'words', 'block', 'pass')",
                   [("c",), ("a",), ("b",)])
    db.commit()
    db.close()
    assert [c["name"] for c in query(path)[0]["checks"]] == ["c", "a", "b"]  # read as it is
    log = AuditLog(path)
    log.open()
    log.record(event("req_new", checks=("z", "y")))
    log.close()
    assert sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall() == [(LATEST,)]
    assert [(e["request_id"], [c["name"] for c in e["checks"]]) for e in query(path)] == [
        ("req_new", ["z", "y"]), ("req_old", ["c", "a", "b"])]


def test_a_nul_in_kept_text_is_stored_and_loses_no_other_event(postgres_server):
    """PostgreSQL text cannot hold NUL: such a message is stored with ␀ in its place, and the events batched
    with it are written too."""
    url = postgres_server.new_database()
    log = AuditLog(url)
    log.open()
    for request_id, text in (("req_a", "before"), ("req_nul", "hi\x00there"), ("req_b", "after")):
        log.record(AuditEvent(request_id=request_id, key_id=None, policy="default", endpoint="chat", direction="input",
                              decision="allow", blocked_by=None, latency_ms=1.0, checks=[], text=text))
    log.close()
    texts = {e["request_id"]: e["text"] for e in query(url)}
    assert texts == {"req_a": "before", "req_nul": "hi\u2400there", "req_b": "after"} and log.failures == 0


def test_one_event_the_database_refuses_loses_only_itself(tmp_path, monkeypatch):
    from sqlalchemy.exc import DataError

    log = AuditLog(tmp_path / "audit.sqlite3")
    write = log._write

    def refuse_one(db, batch):
        if any(e.request_id == "req_bad" for e in batch):
            raise DataError("INSERT", {}, Exception("value refused"))
        write(db, batch)

    monkeypatch.setattr(log, "_write", refuse_one)
    log.open()
    for request_id in ("req_a", "req_bad", "req_b"):
        log.record(event(request_id))
    log.close()
    assert sorted(e["request_id"] for e in query(tmp_path / "audit.sqlite3")) == ["req_a", "req_b"]
    assert log.failures == 1
