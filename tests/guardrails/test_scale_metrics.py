"""One metrics view: `shieldkit serve --workers 2` for real, and every scrape of /metrics, whichever worker answers
it, shows the sum of both workers (prometheus_client's multiprocess mode in a folder that `serve` prepares)."""

import os

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shieldkit.guardrails.ops.metrics import MULTIPROC_ENV, metrics_folder

POLICY = "policies:\n  default:\n    input:\n      - {name: forbidden, kind: words, words: [forbiddenword]}\n"
SENT = 24


def samples(url: str) -> dict[tuple, float]:
    text = httpx.get(url + "/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def checks_answered(found: dict[tuple, float]) -> float:
    return found.get(("shieldkit_requests_total", (("endpoint", "/v1/check"), ("status", "200"))), 0.0)


def ready_workers(found: dict[tuple, float]) -> set[str]:
    return {dict(labels)["pid"] for (name, labels), value in found.items() if name == "shieldkit_ready" and value == 1}


def test_metrics_sum_all_workers(serve, tmp_path, monkeypatch):
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)  # serve picks a fresh folder itself
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    process, url = serve("--workers", "2", "--policy", str(policy), "--upstream", "http://127.0.0.1:9/v1",
                         "--no-audit", ready=False)
    # Both workers serve (each reports itself ready in every scrape, whichever worker answers it).
    def both_ready():
        ready = ready_workers(samples(url))
        return ready if len(ready) >= 2 else None

    # (more than two only if uvicorn replaced a worker that missed its health check on a starved machine)
    workers = serve.wait_until(both_ready, "two ready workers in /metrics", process=process)
    assert str(process.pid) not in workers  # the workers, not the supervisor
    for i in range(SENT):  # a new connection each, so the kernel hands them to either worker
        with httpx.Client() as client:
            assert client.post(url + "/v1/check", json={"text": f"text {i}"}).status_code == 200
    # A worker counts a request just after answering it: wait until the count is complete, then it stays exact.
    serve.wait_until(lambda: checks_answered(samples(url)) == SENT, f"{SENT} checks counted", process=process)
    for _ in range(6):  # several scrapes, each on a new connection (either worker may answer)
        found = samples(url)
        assert checks_answered(found) == SENT and len(ready_workers(found)) >= 2


def test_the_metrics_folder_is_prepared_for_the_workers(tmp_path, monkeypatch):
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with metrics_folder() as folder:  # none given: a fresh temporary folder, set for the workers, removed after
        assert os.environ[MULTIPROC_ENV] == str(folder) and folder.is_dir() and not any(folder.iterdir())
    assert not folder.exists() and MULTIPROC_ENV not in os.environ
    given = tmp_path / "prometheus"
    given.mkdir()
    (given / "counter_12345.db").write_bytes(b"an earlier run")
    (given / "notes.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    with metrics_folder() as folder:  # given: emptied of earlier runs' files, and kept
        assert folder == given and [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert given.is_dir()


def test_a_worker_that_cannot_load_its_models_stops_the_whole_server(serve, tmp_path, monkeypatch):
    """As one process does (the README: what cannot load stops the proxy at start). Before, each worker went on
    answering 503 startup_failed and serve never exited; a missing classifier folder is refused before forking."""
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    missing = tmp_path / "missing.gguf"
    process, _ = serve("--workers", "2", "--upstream", "http://127.0.0.1:9/v1", "--no-audit", "--model", str(missing),
                       ready=False)  # the default policy's classifiers need the model: the workers load it
    assert process.wait(timeout=240) == 2
    process.log.seek(0)
    output = process.log.read()
    assert f"the proxy stopped: model path '{missing}' does not exist" in output and "Traceback" not in output
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"policies:\n  default:\n    input:\n      - {{name: c, kind: classifier, classifier: {tmp_path / 'no'}}}\n")
    process, _ = serve("--workers", "2", "--policy", str(policy), "--upstream", "http://127.0.0.1:9/v1", "--no-audit",
                       ready=False)
    assert process.wait(timeout=120) == 2
    process.log.seek(0)
    assert "classifier folder" in process.log.read()
