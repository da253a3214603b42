"""Fixtures for the guardrail proxy: a real OpenAI-compatible stub upstream on loopback, proxies on loopback built
from a policy text, a fake classifier bank, and real servers in their own processes: ``shieldkit serve``, Debian's
redis-server and PostgreSQL (on free loopback ports with throwaway data; skipped only when not installed).

The fake bank implements the ``SafetyClassifier`` / ``ClassifierBank`` protocols of ``classifiers/base.py`` with
trigger words, so proxy tests run on the tiny random Gemma (the committed classifiers need the embedded one).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from shieldkit.guardrails import ProxySettings, create_app
from shieldkit.guardrails.upstream.stub import ServerThread, create_stub_app

# A text containing the trigger scores 0.97 under that policy; anything else 0.02.
TRIGGERS = {"hate": "vilehate", "harassment": "loser", "sexual": "explicitsex", "violence": "stabbing",
            "self_harm": "selfharm", "dangerous": "nerveagent", "prompt_injection": "jailbreakme"}


class FakeClassifier:
    def __init__(self, name: str, threshold: float = 0.5) -> None:
        self.name = name
        self.description = f"test policy {name}"
        self.threshold = threshold
        self.capabilities = frozenset()

    def score(self, texts: Sequence[str]) -> list[float]:
        trigger = TRIGGERS.get(self.name, self.name)
        return [0.97 if trigger in text.lower() else 0.02 for text in texts]


class FakeBank:
    """Counts calls, can be slowed down or told to fail."""

    def __init__(self, names: Sequence[str], delay: float = 0.0) -> None:
        self.classifiers = {name: FakeClassifier(name) for name in names}
        self.delay = delay
        self.calls: list[tuple[list[str], list[str]]] = []
        self.fail = False
        self.lock = threading.Lock()

    def score(self, texts: Sequence[str], policies: Sequence[str] | None = None) -> dict[str, list[float]]:
        with self.lock:
            self.calls.append((list(texts), list(policies or self.classifiers)))
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("fake bank failure")
        return {p: self.classifiers[p].score(texts) for p in (policies or self.classifiers)}


def fake_loader(bank_holder: dict, delay: float = 0.0):
    def load(refs, runtime):
        bank_holder["bank"] = FakeBank([Path(r).name if "/" in r else r for r in refs], delay)
        return bank_holder["bank"]

    return load


class Proxy:
    def __init__(self, server: ServerThread, app, audit_path: Path, stub_app=None) -> None:
        self.server = server
        self.app = app
        self.services = app.state.services
        self.audit_path = audit_path
        self.url = server.url
        self.stub_app = stub_app

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(self.url + "/readyz").status_code == 200:
                return
            time.sleep(0.02)
        raise AssertionError(f"proxy not ready: {httpx.get(self.url + '/readyz').text}")

    def client(self, api_key: str = "unused", **options):
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0, timeout=30, **options)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)

    @property
    def bank(self):
        return self.services.scorer.loaded.bank


@pytest.fixture(scope="session")
def stub():
    app = create_stub_app()
    with ServerThread(app, log_level="critical") as server:
        server.app = app
        yield server


def _proxy_factory(directory: Path, stub):
    """``make(policy_yaml, **settings) -> Proxy`` writing its files to ``directory``, and the servers it started."""
    started: list[ServerThread] = []

    def make(policy: str, *, wait: bool = True, runtime=None, embedded: bool = False, bank_loader=None,
             upstream_object=None, **settings) -> Proxy:
        policy_path = directory / f"policy{len(started)}.yaml"
        policy_path.write_text(policy)
        audit_path = directory / f"audit{len(started)}.sqlite3"
        values = {"policy": policy_path, "audit_path": audit_path, "upstream": None if embedded else stub.url + "/v1",
                  "upstream_timeout": 5.0, **settings}
        app = create_app(ProxySettings.create(**values), runtime=runtime, bank_loader=bank_loader, upstream=upstream_object)
        server = ServerThread(app, log_level="critical").start()
        started.append(server)
        proxy = Proxy(server, app, audit_path, stub.app)
        if wait:
            proxy.wait_ready()
        return proxy

    return make, started


@pytest.fixture
def make_proxy(tmp_path, stub):
    """make_proxy(policy_yaml, **settings) -> a started Proxy in front of the stub upstream (``embedded=True``: the
    given runtime as the upstream; ``upstream_object``: any Upstream)."""
    make, started = _proxy_factory(tmp_path, stub)
    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def make_module_proxy(tmp_path_factory, stub):
    """make_proxy for proxies that the tests of one module share (each start costs about a quarter second); only
    for tests that leave the proxy as they found it."""
    make, started = _proxy_factory(tmp_path_factory.mktemp("proxies"), stub)
    yield make
    for server in started:
        server.stop()


RULES_POLICY = """
version: 1
policies:
  default:
    refusal: "REFUSED."
    input:
      - {name: no_injection, kind: regex, patterns: ['ignore (all )?previous instructions']}
      - {name: pii, kind: pii, action: redact, restore: true}
    output:
      - {name: forbidden, kind: words, words: [forbiddenword]}
      - {name: secrets, kind: regex, action: redact, label: SECRET, ignore_case: false, patterns: ['sk-[A-Za-z0-9]{20,}']}
      - {name: shadow, kind: words, action: flag, words: [shadowword]}
"""


@pytest.fixture
def rules_proxy(make_proxy):
    return make_proxy(RULES_POLICY)


@pytest.fixture(scope="module")
def shared_rules_proxy(make_module_proxy):
    """rules_proxy, shared by the tests of one module."""
    return make_module_proxy(RULES_POLICY)


def fake_scorer(policies, holder: dict | None = None, **options):
    """A loaded ClassifierScorer of ``policies`` (a LoadedPolicies) on a FakeBank (``holder["bank"]``)."""
    from shieldkit.guardrails.scoring import ClassifierScorer, ScoringOptions

    holder = {} if holder is None else holder
    scorer = ClassifierScorer.for_policies(policies, ScoringOptions(**options), loader=fake_loader(holder))
    scorer.load(runtime=None)
    return scorer


@pytest.fixture(scope="session")
def fakes():
    """The fake classifier pieces, for tests that build banks themselves."""
    return type("Fakes", (), {"FakeBank": FakeBank, "TRIGGERS": TRIGGERS, "loader": staticmethod(fake_loader),
                              "scorer": staticmethod(fake_scorer)})


# --- real servers: `shieldkit serve` processes, Debian's redis-server and PostgreSQL ------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, what: str, timeout: float = 300, process: subprocess.Popen | None = None):
    """Poll ``condition()`` (errors count as not yet) until it returns something true; fail naming ``what``. The
    timeout only bounds the wait: a starved machine (CPU given to other work) can take minutes to start workers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process ended ({process.returncode}): {_output(process)}")
        try:
            result = condition()
        except (OSError, httpx.HTTPError):
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout:g} s")


def logged(command: list[str], **options) -> subprocess.Popen:
    """Popen with stdout and stderr in a file (a pipe nobody reads could fill and stall the server)."""
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, **options)
    process.log = log
    return process


def _output(process: subprocess.Popen) -> str:
    process.log.seek(0)
    return process.log.read()[-4000:]


def stop_process(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def serve():
    """serve(*arguments, env={...}) -> (process, base URL): ``shieldkit serve`` on a free loopback port, ready
    (``/readyz`` 200); stopped with SIGTERM afterwards (or by the test)."""
    started: list[subprocess.Popen] = []

    def start(*arguments: str, env: dict[str, str] | None = None, ready: bool = True):
        port = free_port()
        command = [sys.executable, "-m", "shieldkit", "serve", "--port", str(port), "--log-level", "warning", *arguments]
        process = logged(command, env={**os.environ, "SHIELDKIT_PROGRESS": "0", **(env or {})})
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        if ready:
            wait_until(lambda: httpx.get(url + "/readyz").status_code == 200, f"shieldkit serve {arguments}",
                       process=process)
        return process, url

    start.free_port, start.wait_until = free_port, wait_until  # for the tests that use it
    yield start
    for process in started:
        stop_process(process)


class RedisServer:
    """Debian's redis-server on a free loopback port, no persistence, its files in ``directory``."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = logged([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no"])
        wait_until(self._pong, "redis-server", timeout=30, process=self.process)
        return self

    def _pong(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)
            self.process = None


@pytest.fixture
def redis_server(tmp_path_factory):
    """A started RedisServer (``.url``, ``.kill()``, ``.start()`` again on the same port), stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; `make servers` installs it)")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


class PostgresServer:
    """Debian's PostgreSQL: a throwaway cluster (initdb) on a free loopback port, trust authentication for its one
    user, no Unix socket, no fsync. As root the server runs as the ``postgres`` user (it refuses root)."""

    def __init__(self, bindir: Path, directory: Path, user: str | None) -> None:
        self.bindir, self.directory, self.user, self.port = bindir, directory, user, free_port()
        self.process: subprocess.Popen | None = None
        self._databases = 0

    def _run(self, *command: str) -> subprocess.Popen:
        return logged(list(command), user=self.user, group=self.user, extra_groups=[] if self.user else None,
                      cwd=self.directory)

    def start(self) -> PostgresServer:
        data = self.directory / "data"
        initdb = self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "shieldkit", "--auth=trust",
                           "--no-locale", "-E", "UTF8", "--no-sync")
        if initdb.wait(timeout=120) != 0:
            raise AssertionError(f"initdb failed: {_output(initdb)}")
        self.process = self._run(str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
        wait_until(lambda: self._connect("postgres"), "postgres", timeout=60, process=self.process)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://shieldkit@127.0.0.1:{self.port}/{database}"

    def _connect(self, database: str):
        import psycopg

        try:
            with psycopg.connect(self.url(database), connect_timeout=2, autocommit=True) as connection:
                return connection.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"test_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGINT)  # the fast shutdown
            self.process = None


def _postgres_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """One throwaway PostgreSQL for the session; tests take databases of it with ``new_database()``."""
    bindir = _postgres_bindir()
    if bindir is None or not (bindir / "postgres").exists():
        pytest.skip("PostgreSQL is not installed (Debian package postgresql; `make servers` installs it)")
    if os.geteuid() == 0:  # the server refuses root; its files go where the postgres user may write
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no postgres user to run PostgreSQL as")
        directory, user = Path(tempfile.mkdtemp(prefix="shieldkit-test-pg-")), "postgres"
        shutil.chown(directory, user, user)
    else:
        directory, user = tmp_path_factory.mktemp("postgres"), None
    server = PostgresServer(bindir, directory, user)
    try:
        yield server.start()
    finally:
        server.stop()
        if user is not None:
            shutil.rmtree(directory)
