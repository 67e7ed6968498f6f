"""localstripe (a stateful fake Stripe server) for the tests: started once per session
from Python, bound to 127.0.0.1 on a free port, with its pickling to /tmp turned off.
Skipped with the reason when it cannot start; under CI=true that is a failure."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import pytest

SECRET_KEY = "sk_test_fabpool"
WEBHOOK_SECRET = "whsec_fabpool_tests"
# localstripe posts an event a second after it happens, to the URL registered by
# then: a test's last events would land in the next test (on an invoice of the same id).
DELIVERY_DELAY = 1.2
NOWHERE = "http://127.0.0.1:9/"

SERVER = """
import sys
from aiohttp import web
from localstripe import server
from localstripe.resources import store

store.dump_to_disk = lambda: None  # keep the state in memory only
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(base: str) -> bool:
    request = urllib.request.Request(
        f"{base}/v1/customers", headers={"Authorization": f"Bearer {SECRET_KEY}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class LocalStripe:
    def __init__(self, base: str):
        self.base = base

    def post(self, path: str, body: dict) -> None:
        request = urllib.request.Request(
            f"{self.base}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {SECRET_KEY}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def deliver_webhooks_to(self, url: str, events: list[str]) -> None:
        self.post(
            "/_config/webhooks/fabpool", {"url": url, "secret": WEBHOOK_SECRET, "events": events}
        )

    @contextmanager
    def webhooks_to(self, url: str, events: list[str]):
        """Events delivered to `url` during the block; those still on their way at
        its end go nowhere, before anything else listens."""
        self.deliver_webhooks_to(url, events)
        try:
            yield
        finally:
            self.deliver_webhooks_to(NOWHERE, events)
            time.sleep(DELIVERY_DELAY)


@pytest.fixture(scope="session")
def localstripe():
    def unavailable(reason: str):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"localstripe is required under CI: {reason}")
        pytest.skip(f"localstripe could not start: {reason}")

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        unavailable(str(exc))
    deadline = time.monotonic() + 15
    while not _answers(base):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            unavailable((process.stderr.read() or b"no answer").decode()[-500:])
        time.sleep(0.1)
    yield LocalStripe(base)
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
