"""A real HTTP listener on 127.0.0.1 that records what it receives, and a Standard
Webhooks verifier (the ``standardwebhooks`` package, not our own code)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.analytics.conftest import start_worker  # noqa: F401 (a real Celery worker, as analytics tests use)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Listener:
    """``replies`` are used in order, one per request; then ``default``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with listener._lock:
                    listener.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                    reply = listener.replies.pop(0) if listener.replies else listener.default
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (a bounded response) or timed out

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


@pytest.fixture
def second_listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


def verified(secret: str, received: Received) -> Any:
    """The payload, after standardwebhooks has checked the signature (raises if it does not verify)."""
    return Webhook(secret).verify(received.body, received.headers)


def deliver_pending(**kwargs: Any) -> list[Any]:
    """Attempt every pending delivery that is due, in-process (what the worker's task does)."""
    from portal.webhooks import selectors, services

    return [services.webhook_delivery_attempt(delivery_id=i, **kwargs) for i in selectors.delivery_ids_due()]


def make_due() -> None:
    """Pretend the retry delays have passed."""
    from django.utils import timezone

    from portal.webhooks.models import DeliveryStatus, WebhookDelivery

    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).update(next_attempt_at=timezone.now())


WaitFor = Callable[..., None]
