import os
import socket
import subprocess
import sys
import time

import httpx
import openai

from shieldkit.cli import main
from shieldkit.guardrails.policy import parse_policy_text
from shieldkit.guardrails.policy.schema import hash_key


def test_serve_refuses_a_bad_policy_with_its_line(tmp_path, capsys):
    policy = tmp_path / "p.yaml"
    policy.write_text("policies:\n  default:\n    outptu: []\n")
    assert main(["serve", "--policy", str(policy), "--no-audit"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "line 3" in err and "did you mean 'output'" in err


def test_serve_refuses_a_blocking_classifier_check_that_cannot_load(tmp_path, capsys):
    policy = tmp_path / "p.yaml"
    policy.write_text("policies:\n  default:\n    input:\n      - {name: h, kind: classifier, classifier: no_such_policy}\n")
    assert main(["serve", "--policy", str(policy), "--upstream", "http://127.0.0.1:9/v1", "--no-audit"]) == 2
    assert "cannot run" in capsys.readouterr().err


def test_serve_refuses_a_busy_port(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--upstream", "http://127.0.0.1:9/v1", "--port", str(port), "--no-audit"]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_key_new_prints_a_working_policy_entry(capsys):
    assert main(["key", "new", "--id", "team-a", "--rate-limit", "10/minute"]) == 0
    out, err = capsys.readouterr()
    key = err.split("store it now): ")[1].split()[0]
    loaded = parse_policy_text("policies:\n  default: {}\nkeys:\n" + out)
    assert loaded.file.keys[0].sha256 == hash_key(key) and loaded.file.keys[0].rate == (10, 60.0)


def test_the_serve_command_runs_the_proxy(stub, tmp_path):
    """`shieldkit serve` as a user starts it: a real process, a policy file, the openai client. (The default policy
    with its classifiers on the real model is tested in test_embedded.py.)"""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    audit = tmp_path / "audit.sqlite3"
    policy = tmp_path / "policy.yaml"
    policy.write_text("policies:\n  default:\n    input:\n      - {name: pii, kind: pii, action: redact, restore: true}\n"
                      "      - {name: gone, kind: classifier, classifier: no_such_policy, on_error: allow}\n")
    command = [sys.executable, "-m", "shieldkit", "serve", "--upstream", stub.url + "/v1", "--port", str(port),
               "--audit", str(audit), "--policy", str(policy), "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "SHIELDKIT_PROGRESS": "0"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        reply = client.chat.completions.create(model="stub", messages=[{"role": "user", "content": "write to a@b.co"}])
        assert reply.choices[0].message.content == "write to a@b.co"
        assert stub.app.state.received[-1]["messages"][0]["content"] == "write to <EMAIL_1>"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert process.returncode in (0, -15), err  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert "UNAVAILABLE classifier checks" in err  # loud about the classifiers it could not load
    from shieldkit.guardrails.ops.audit import query

    assert [e["direction"] for e in query(audit)] == ["output", "input"]  # flushed on shutdown


def test_serve_refuses_an_unwritable_audit_log(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["serve", "--upstream", "http://127.0.0.1:9/v1", "--audit", str(blocker / "audit.sqlite3")]) == 2
    assert "cannot open the audit log" in capsys.readouterr().err
