"""Alert actions on real processes and a real HTTP server on 127.0.0.1: the command gets the alert JSON on
stdin and is killed by its timeout; the webhook retries with backoff and counts failures; submit() never
blocks."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers_monitor import wait_for

from realtime.alerts.actions import CommandRunner, WebhookSender
from realtime.alerts.rules import CommandAction, WebhookAction

ALERT = {"type": "alert", "kind": "fire", "rule": "looked_away", "episode": 1, "t": 4.5}


class WebhookServer:
    """Collects POSTed JSON; answers ``fail_first`` requests with 503 first."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests += 1
                time.sleep(delay_s)
                if server.requests <= fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                server.bodies.append(json.loads(data))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="webhook-server")
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook():
    servers: list[WebhookServer] = []

    def make(**kw) -> WebhookServer:
        servers.append(WebhookServer(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_webhook_retries_with_backoff_then_delivers(webhook) -> None:
    srv = webhook(fail_first=2)
    results: list[dict] = []
    sender = WebhookSender(WebhookAction(url=srv.url, retries=3, backoff_s=0.05), results.append)
    sender.start()
    t0 = time.monotonic()
    sender.submit(ALERT)
    assert wait_for(lambda: results, 10)
    elapsed = time.monotonic() - t0
    assert sender.stop()
    assert srv.bodies == [ALERT] and srv.requests == 3
    assert results[0]["ok"] and results[0]["attempts"] == 3 and results[0]["action"] == "webhook"
    assert elapsed >= 0.05 + 0.1  # backoff 0.05 s, then 0.1 s
    st = sender.stats()
    assert (st.delivered, st.failed, st.retries) == (1, 0, 2)


def test_webhook_failure_is_counted_and_nothing_waits_for_it(webhook) -> None:
    srv = webhook(fail_first=100)
    dead = "http://127.0.0.1:9/alerts"  # discard port: connection refused
    results: list[dict] = []
    s1 = WebhookSender(WebhookAction(url=srv.url, retries=1, backoff_s=0.01), results.append)
    s2 = WebhookSender(WebhookAction(url=dead, retries=1, backoff_s=0.01), results.append)
    for s in (s1, s2):
        s.start()
        s.submit(ALERT)
    assert wait_for(lambda: len(results) == 2, 10)
    assert not any(r["ok"] for r in results)
    assert {r["error"] for r in results} >= {"HTTP 503"}
    assert any("Connection" in r["error"] or "refused" in r["error"].lower() for r in results), results
    assert s1.stats().failed == 1 and s2.stats().failed == 1
    assert s1.stop() and s2.stop()


def test_webhook_timeout_and_bounded_queue(webhook) -> None:
    srv = webhook(delay_s=1.0)
    results: list[dict] = []
    sender = WebhookSender(WebhookAction(url=srv.url, timeout_s=0.2, retries=0, queue_size=2), results.append)
    sender.start()
    t0 = time.monotonic()
    for k in range(6):
        sender.submit({**ALERT, "episode": k})
    assert time.monotonic() - t0 < 0.1  # submit never waits for the network
    assert wait_for(lambda: sender.idle(), 10)
    st = sender.stats()
    assert st.submitted == 6 and st.dropped >= 3 and st.failed == 6 - st.dropped
    assert all("timed out" in r["error"].lower() or "timeout" in r["error"].lower() for r in results), results
    assert sender.stop()


def test_command_gets_the_alert_on_stdin_and_its_exit_status_is_reported(tmp_path) -> None:
    out = tmp_path / "got.json"
    code = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read()); sys.exit(3)"
    results: list[dict] = []
    runner = CommandRunner(CommandAction(argv=[sys.executable, "-c", code], timeout_s=10), results.append)
    runner.start()
    runner.submit(ALERT)
    assert wait_for(lambda: results, 20)
    assert runner.stop()
    assert json.loads(out.read_text()) == ALERT
    r = results[0]
    assert r["exit_status"] == 3 and not r["timed_out"] and not r["ok"] and r["error"].startswith("exit status 3")


def test_hung_command_is_killed_by_its_timeout_with_its_children(tmp_path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    results: list[dict] = []
    runner = CommandRunner(CommandAction(argv=["sh", "-c", script], timeout_s=0.5), results.append)
    runner.start()
    t0 = time.monotonic()
    assert runner.submit(ALERT)
    assert time.monotonic() - t0 < 0.05  # the caller never waits for the command
    assert wait_for(lambda: results, 10)
    r = results[0]
    assert r["timed_out"] and r["exit_status"] == -9 and 0.5 <= r["seconds"] < 5
    child = int(pid_file.read_text())
    assert wait_for(lambda: not _alive(child), 5), "the command's child survived the kill"
    assert runner.stop()


def test_missing_command_is_a_failure_not_a_crash() -> None:
    results: list[dict] = []
    runner = CommandRunner(CommandAction(argv=["/nonexistent/notify"], timeout_s=1), results.append)
    runner.start()
    runner.submit(ALERT)
    assert wait_for(lambda: results, 10)
    assert not results[0]["ok"] and "cannot run" in results[0]["error"]
    assert runner.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
