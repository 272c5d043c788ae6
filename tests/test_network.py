"""Hub reachability: through huggingface_hub's HTTP session (HF_ENDPOINT and proxies apply), within a hard deadline.

The probes run in subprocesses with the offline variables unset: huggingface_hub reads them once, at import, and
this test session is offline (conftest).
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from hf_rnn import network
from hf_rnn.network import HUB_PROBE_DEADLINE_S, hub_is_offline

pytestmark = pytest.mark.integration  # whole paths: training, the command line, files, processes

NON_ROUTABLE = "http://10.255.255.1"  # private address space that nobody answers for

HANGING_RESOLVER = """
import socket, time
def hanging_resolver(*args, **kwargs):
    time.sleep(60)
    raise socket.gaierror("resolver gave up")
socket.getaddrinfo = hanging_resolver
"""


def probe(tmp_path, endpoint: str, prelude: str = "", **env_updates: str) -> dict:
    """Run `prelude`, then ask `hub_is_offline()` and try to load a Hub dataset, in a fresh online process."""
    env = {key: value for key, value in os.environ.items() if not key.endswith("_OFFLINE") and "PROXY" not in key}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), **env_updates)
    script = (
        prelude
        + """
import json, time
from hf_rnn.data import DataConfig, DataError, load_task_splits
from hf_rnn.network import hub_is_offline
started = time.perf_counter()
offline = hub_is_offline()
seconds = time.perf_counter() - started
try:
    load_task_splits(DataConfig(), None, ["text", "label"])
    message = ""
except DataError as error:
    message = str(error)
print(json.dumps({"offline": offline, "seconds": seconds, "message": message}))
"""
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_offline_variables_answer_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    assert hub_is_offline()
    assert time.perf_counter() - started < 0.1


def test_an_address_that_never_answers_is_offline_within_the_deadline(tmp_path):
    result = probe(tmp_path, NON_ROUTABLE)
    assert result["offline"] and result["seconds"] < 10
    assert "offline" in result["message"] and "Point --data-dir" in result["message"]  # says what to do


def test_a_dns_lookup_that_hangs_is_offline_within_the_deadline(tmp_path):
    """Before: `socket.create_connection(timeout=3)` waited for the resolver, whose time its timeout does not cover."""
    result = probe(tmp_path, "https://hub.example.invalid", prelude=HANGING_RESOLVER)
    assert result["offline"]
    assert HUB_PROBE_DEADLINE_S - 0.5 < result["seconds"] < 10
    assert "Point --data-dir" in result["message"]


class RecordingProxy(http.server.BaseHTTPRequestHandler):
    """An HTTP proxy stand-in: answers every request 200 and records its request line."""

    requests: list[str] = []

    def do_HEAD(self):  # noqa: N802 (http.server's naming)
        RecordingProxy.requests.append(self.requestline)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_probe_goes_through_the_configured_proxy(tmp_path):
    """A host only the proxy can reach counts as online. Before: a raw socket to the host, which does not resolve."""
    server = http.server.HTTPServer(("127.0.0.1", 0), RecordingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {key: value for key, value in os.environ.items() if not key.endswith("_OFFLINE") and "PROXY" not in key}
    env.update(HF_ENDPOINT="http://hub.example.invalid", HTTP_PROXY=f"http://127.0.0.1:{server.server_port}")
    script = "from hf_rnn.network import hub_is_offline; raise SystemExit(int(hub_is_offline()))"
    try:
        result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, timeout=60)
    finally:
        server.shutdown()
    assert result.returncode == 0
    assert RecordingProxy.requests == ["HEAD http://hub.example.invalid/ HTTP/1.1"]


def test_a_refused_connection_is_offline_at_once(tmp_path):
    result = probe(tmp_path, "http://127.0.0.1:9")
    assert result["offline"] and result["seconds"] < 2


def test_one_probe_answers_for_a_while_per_endpoint(monkeypatch):
    """Reading several files of a Hub run waits for the probe's deadline once, not once per file."""
    probes = []
    monkeypatch.setattr(network, "recent_probes", {})
    monkeypatch.setattr(network, "hub_is_reachable", lambda: probes.append(network.hub_endpoint()) or False)
    for name in network.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example")
    assert hub_is_offline() and hub_is_offline()
    assert probes == ["http://hub.example"]
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example")  # another endpoint is asked again
    assert hub_is_offline() and probes == ["http://hub.example", "http://mirror.example"]
    monkeypatch.setattr(network, "HUB_PROBE_MEMORY_S", 0.0)  # an old answer is asked again
    time.sleep(0.01)
    assert hub_is_offline() and len(probes) == 3
