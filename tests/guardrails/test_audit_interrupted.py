"""The audit log never silently misses an answer: a request whose process is killed mid-answer is marked
``interrupted`` when the next process opens the log; an upstream that gives no answer leaves an ``error`` row; a
live process's pending answers are never touched by another process sharing the file."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from shieldkit.cli import main
from shieldkit.guardrails.ops.audit import AuditEvent, AuditLog, query

SENTENCES = " ".join(f"Sentence number {i} is here." for i in range(60))  # ~5 s from stub-slow (20 ms a word)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_proxy(stub, tmp_path, audit, port) -> subprocess.Popen:
    policy = tmp_path / "policy.yaml"
    policy.write_text("policies:\n  default:\n    output:\n      - {name: forbidden, kind: words, words: [forbiddenword]}\n")
    command = [sys.executable, "-m", "shieldkit", "serve", "--upstream", stub.url + "/v1", "--port", str(port),
               "--audit", str(audit), "--policy", str(policy), "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "SHIELDKIT_PROGRESS": "0"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the proxy did not start: {process.communicate(timeout=10)[1]}")


def rows(audit) -> list[tuple]:
    db = sqlite3.connect(audit)
    try:
        return db.execute("SELECT request_id, direction, decision FROM events ORDER BY id").fetchall()
    finally:
        db.close()


def test_a_request_in_flight_when_the_process_is_killed_is_marked_interrupted(stub, tmp_path, capsys):
    audit, port = tmp_path / "audit.sqlite3", free_port()
    first = start_proxy(stub, tmp_path, audit, port)
    request_id = stream_then_stop(first, port, signal.SIGKILL)
    assert rows(audit) == [(request_id, "input", "allow")]  # before: this was all the log would ever say
    assert main(["audit", "--db", str(audit), "--json"]) == 0  # the command tells already, before any restart
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["direction"], e["decision"]) for e in shown] == [("output", "interrupted"), ("input", "allow")]

    second = start_proxy(stub, tmp_path, audit, port)  # opening the log marks the dead process's answers
    assert rows(audit) == [(request_id, "input", "allow"), (request_id, "output", "interrupted")]
    assert main(["audit", "--db", str(audit), "--request-id", request_id]) == 0
    table = capsys.readouterr().out
    assert "interrupted" in table and request_id in table
    assert main(["audit", "--db", str(audit), "--decision", "interrupted", "--json"]) == 0
    [event] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert event["request_id"] == request_id and event["direction"] == "output"

    # A graceful stop (SIGTERM) mid-answer records the answer's outcome: the checks of what was sent.
    stopped_id = stream_then_stop(second, port, signal.SIGTERM)
    assert rows(audit)[2:] == [(stopped_id, "input", "allow"), (stopped_id, "output", "allow")]
    assert sqlite3.connect(audit).execute("SELECT COUNT(*) FROM pending").fetchone() == (0,)


def stream_then_stop(process: subprocess.Popen, port: int, signum: int) -> str:
    """Start a slow streamed answer, wait for its first checked text, then signal the proxy; returns the request id."""
    request = {"model": "stub-slow", "stream": True, "messages": [{"role": "user", "content": SENTENCES}]}
    try:
        with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=request, timeout=30) as response:
            request_id = response.headers["x-request-id"]
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                    process.send_signal(signum)
                    break
            for _ in lines:  # the rest, until the proxy ends the stream or is gone
                pass
    except httpx.HTTPError:
        pass  # the stream ends abruptly: the proxy is gone
    finally:
        try:
            process.wait(timeout=20)
        finally:
            process.kill()
    return request_id


def input_event(request_id: str, opens: str | None) -> AuditEvent:
    return AuditEvent(request_id=request_id, key_id=None, policy="default", endpoint="chat", direction="input",
                      decision="allow", blocked_by=None, latency_ms=1.0, checks=[], opens=opens)


def test_a_live_process_keeps_its_pending_answers_and_marks_them_when_it_closes(tmp_path):
    path = tmp_path / "shared.sqlite3"
    worker, sibling = AuditLog(path), AuditLog(path)
    worker.open()
    worker.record(input_event("req_in_flight", opens="t1"))
    worker.flush()
    sibling.open()  # a second worker starting while the first serves: it must not touch the first one's answers
    assert [e["decision"] for e in query(path)] == ["pending", "allow"]  # an answer in progress
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
    worker.close()  # shutting down with the answer still open (e.g. a stream that never started)
    assert [(e["direction"], e["decision"]) for e in query(path)] == [("output", "interrupted"), ("input", "allow")]
    sibling.close()
    assert not list((tmp_path / "shared.sqlite3-owners").iterdir())  # lock files go with their owners


def test_a_process_that_dies_without_closing_is_swept_by_the_next_one(tmp_path):
    path = tmp_path / "audit.sqlite3"
    script = ("import os, sys; from shieldkit.guardrails.ops.audit import AuditEvent, AuditLog; log = AuditLog(sys.argv[1]); "
              "log.open(); log.record(AuditEvent(request_id='req_dead', key_id=None, policy='default', endpoint='chat', "
              "direction='input', decision='allow', blocked_by=None, latency_ms=1.0, checks=[], opens='t1')); "
              "log.flush(); os._exit(0)")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    survivor = AuditLog(path)
    survivor.open()
    try:
        assert [(e["request_id"], e["decision"]) for e in query(path)] == [("req_dead", "interrupted"), ("req_dead", "allow")]
    finally:
        survivor.close()


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_gives_no_answer_leaves_an_error_row(rules_proxy, stream):
    response = rules_proxy.post("/v1/chat/completions", json={"model": "stub-500", "stream": stream,
                                                              "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 502
    rules_proxy.services.audit.flush()
    assert [(e["direction"], e["decision"]) for e in query(rules_proxy.audit_path)] == [("output", "error"), ("input", "allow")]
    assert sqlite3.connect(rules_proxy.audit_path).execute("SELECT COUNT(*) FROM pending").fetchone() == (0,)
