"""A subscribed key reaches the upstream with method, path, query and body intact."""

from __future__ import annotations

import httpx


def test_it_proxies_get_with_path_and_query(start_gateway, world, upstream):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/things/42?b=2&a=1", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["method"] == "GET"
    assert seen["path"] == "/things/42"
    assert seen["query"] == "b=2&a=1"
    assert upstream.served() == 1


def test_it_proxies_post_body(start_gateway, world, upstream):
    gateway = start_gateway()
    r = httpx.post(f"{gateway.url}/echo/v1/upload", content=b"x" * 12345, headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "POST"
    assert r.json()["body_size"] == 12345


def test_it_answers_unknown_api_with_problem_json(start_gateway, world):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/nope/v1/x", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/unknown-api")
    r = httpx.get(f"{gateway.url}/echo/v9/x", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 404
    assert r.json()["type"].endswith("/unknown-version")


def test_it_proxies_head_without_a_body(start_gateway, world, upstream):
    gateway = start_gateway()
    r = httpx.head(f"{gateway.url}/echo/v1/x", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200
    assert r.content == b""
    assert int(r.headers["content-length"]) > 0
    assert upstream.served() == 1


class RequestLineRecorder:
    """Answers one request with 200 and keeps the request line exactly as it arrived."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.request_line = b""
        self.head = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            self.request_line = head.split(b"\r\n", 1)[0]  # as soon as the head is in
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(head.partition(b"\r\n\r\n")[2]) < length:
                head += conn.recv(65536)
            self.head = head  # the head and the body, as they arrived
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def test_it_forwards_path_and_query_byte_for_byte(start_gateway, publish, world):
    recorder = RequestLineRecorder()
    publish.route(f"http://127.0.0.1:{recorder.port}/base")
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/a%2Fb/c%20d;p?q=%2F&z=1&q=2", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200
    recorder.thread.join(timeout=5)
    recorder.sock.close()
    assert recorder.request_line == b"GET /base/a%2Fb/c%20d;p?q=%2F&z=1&q=2 HTTP/1.1"



def test_a_small_body_is_read_whole_before_the_upstream_hears_of_it(start_gateway, publish, world):
    """Bodies up to SMALL_REQUEST with a Content-Length are read whole and sent in one
    write (gateway/proxy.py): while the client is still sending one, the upstream has not
    been asked anything (no pooled connection held for a slow client); then it gets the
    request with its Content-Length, not chunked. A body without a length still streams."""
    import socket
    import time

    recorder = RequestLineRecorder()
    publish.route(f"http://127.0.0.1:{recorder.port}")
    gateway = start_gateway()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as client:
        client.sendall(b"POST /echo/v1/small HTTP/1.1\r\nHost: x\r\nX-API-Key: " + world.alice_key.encode()
                       + b"\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\"")
        time.sleep(0.5)
        assert recorder.request_line == b"", "the upstream heard of the request before its body was in"
        client.sendall(b": 1}")
        answer = b""
        while b"\r\n\r\nok" not in answer:
            data = client.recv(65536)
            assert data, answer
            answer += data
    recorder.thread.join(timeout=5)
    recorder.sock.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert recorder.request_line == b"POST /small HTTP/1.1"
    assert b"\r\ncontent-length: 8\r\n" in recorder.head.lower()
    assert recorder.head.endswith(b"\r\n\r\n{\"a\": 1}")


def test_a_body_without_a_length_streams_chunked(start_gateway, world, upstream):
    gateway = start_gateway()

    def pieces():
        yield b"x" * 1000
        yield b"y" * 2345

    r = httpx.post(f"{gateway.url}/echo/v1/chunked", content=pieces(), headers={"X-API-Key": world.alice_key})
    assert r.status_code == 200, r.text
    seen = {k.lower(): v for k, v in r.json()["headers"]}
    assert r.json()["body_size"] == 3345
    assert seen.get("transfer-encoding") == "chunked"
