"""Property-based fuzzing of the gateway's edge (hypothesis), over a real socket to a real
``python -m gateway`` in front of the echo upstream, which reflects the path, query and
headers it received.

Properties, for every generated request:

* the gateway never answers 500 (nor any 5xx: Redis and the upstream are up);
* the credential never reaches the upstream, wherever and however it was presented
  (key header in any case, repeated, Bearer key or OAuth2 token in any case,
  ?api_key= with its name percent-encoded), and never appears in the gateway's answer;
* after raw, malformed bytes the gateway answers 4xx or closes, and keeps serving;
* the gateway logs no traceback.

Bounds: a fixed number of examples per property (derandomized, so CI is repeatable),
one gateway worker; the whole file runs in about 15 seconds.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import string
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant

EXAMPLES = 150
RAW_EXAMPLES = 100
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RAW_FUZZ = settings(FUZZ, max_examples=RAW_EXAMPLES)

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# Header values: visible Latin-1 and spaces; CR and LF are the raw test's business.
VALUE_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")
# Framing is ours to set; random framing headers only produce timeouts, not findings.
FRAMING = {"content-length", "transfer-encoding", "host", "connection", "expect"}


def exchange(port: int, data: bytes, timeout: float = 2.0) -> bytes:
    """Send raw bytes; read one whole response (by its Content-Length), or until the
    gateway closes, or until ``timeout`` passes with nothing more to read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # it may close on us mid-send: what it said so far counts
            sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if complete(received):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return received


def complete(response: bytes) -> bool:
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def status_of(response: bytes) -> int | None:
    if not response.startswith(b"HTTP/1."):
        return None
    return int(response.split(b" ", 2)[1])


@pytest.fixture
def edge(start_gateway, publish, upstream):
    """One gateway in front of the echo upstream; alice's key works on echo v1, where the
    query parameter is allowed too, so every credential location is live."""
    publish.route(upstream.url, allow_query_key=True)
    publish.route(upstream.url, version="v2")
    publish.application(ALICE_APP, {ECHO_API_ID: grant(1001)}, name="alice-app")
    key = publish.key(ALICE_APP, key_id=1)
    token = "oauth-" + secrets.token_urlsafe(32)  # an OAuth2 access token, not key-shaped
    publish.token(ALICE_APP, token)
    gateway = start_gateway(GATEWAY_HEADER_TIMEOUT_S="1")
    yield gateway, key, token
    log = gateway.log()
    assert "Traceback" not in log, log


def case_variant(text: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips + [False] * len(text), strict=False))


segment = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@", max_size=12),
    st.binary(max_size=8).map(lambda b: quote(b, safe="")),
    st.sampled_from(["..", ".", "%2e%2e", "%2F", "%00", "%ZZ", "%", "%c0%af", "%ff%fe", "", "api_key=x"]),
)
query_pair = st.tuples(
    st.one_of(st.text(alphabet=string.ascii_letters + "_-", min_size=1, max_size=8),
              st.sampled_from(["API_KEY", "api key", "key", "apikey"])),
    st.one_of(st.text(max_size=10).map(lambda t: quote(t, safe="")), st.sampled_from(["", "%", "%zz", "=", "&"])),
)
header = st.tuples(
    st.text(alphabet=TCHAR, min_size=1, max_size=20).filter(lambda n: n.lower() not in FRAMING),
    st.text(alphabet=VALUE_CHARS, max_size=40).map(str.strip),
)
# ?api_key= as key_auth reads it (percent-decoded), so also in these spellings.
QUERY_KEY_NAMES = ["api_key", "api%5Fkey", "%61pi_key", "api%5fkey", "%61%70%69%5f%6b%65%79"]
# Where and how the key is presented. Every one of these is a credential location.
placement = st.one_of(
    st.tuples(st.just("header"), st.lists(st.booleans(), min_size=9, max_size=9), st.integers(1, 2)),
    st.tuples(st.just("bearer"), st.lists(st.booleans(), min_size=6, max_size=6), st.sampled_from([" ", "  "])),
    st.tuples(st.just("token"), st.lists(st.booleans(), min_size=6, max_size=6), st.integers(1, 2)),
    st.tuples(st.just("query"), st.sampled_from(QUERY_KEY_NAMES), st.integers(1, 2)),
    st.tuples(st.just("none")),
)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND", "X-CUSTOM"]),
    version=st.sampled_from(["v1", "v1", "v1", "v2", "v9", ""]),
    segments=st.lists(segment, max_size=5),
    query=st.lists(query_pair, max_size=4),
    headers=st.lists(header, max_size=6),
    where=placement,
    body=st.binary(max_size=2048),
    position=st.integers(0, 4),
)
def test_no_5xx_and_no_credential_upstream(edge, method, version, segments, query, headers, where, body, position):
    gateway, key, token = edge
    pairs = [f"{name}={value}" for name, value in query]
    head = [(name, value) for name, value in headers]
    if where[0] == "header":
        for _ in range(where[2]):
            head.insert(position % (len(head) + 1), (case_variant("x-api-key", where[1]), key))
    elif where[0] == "bearer":
        head.insert(position % (len(head) + 1), ("Authorization", case_variant("bearer", where[1]) + where[2] + key))
    elif where[0] == "token":
        for _ in range(where[2]):
            head.insert(position % (len(head) + 1), ("Authorization", case_variant("bearer", where[1]) + " " + token))
    elif where[0] == "query":
        for _ in range(where[2]):
            pairs.insert(position % (len(pairs) + 1), f"{where[1]}={key}")
    target = "/echo/" + version + "/" + "/".join(segments)
    if pairs:
        target += "?" + "&".join(pairs)
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in head]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    response = exchange(gateway.port, request)

    status = status_of(response)
    assert status is not None, (request[:300], response[:300])
    assert status < 500, (status, request[:500], response[:1000])
    assert key.encode() not in response, f"the key came back (from the upstream?): {response[:1500]!r}"
    assert token.encode() not in response, f"the token came back (from the upstream?): {response[:1500]!r}"


odd_bytes = st.binary(min_size=1, max_size=40)
TEMPLATES = [
    b"GET /echo/v1/%s HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n",
    b"GET /echo/v1/ HTTP/1.1\r\nHost: x\r\n%s: v\r\nX-API-Key: {key}\r\n\r\n",
    b"GET /echo/v1/ HTTP/1.1\r\nHost: x\r\nX-Odd: %s\r\nX-API-Key: {key}\r\n\r\n",
    b"GET /echo/v1/?api_key={key}&%s HTTP/1.1\r\nHost: x\r\n\r\n",
    b"%s /echo/v1/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n",
    b"GET /echo/v1/ %s\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n",
    b"POST /echo/v1/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\n0\r\n\r\n",
    b"GET /echo/v1/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n%s\r\n\r\n",
    b"GET /echo/v1/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}%s\r\n\r\n",
]


@RAW_FUZZ
@given(template=st.sampled_from(TEMPLATES), junk=odd_bytes)
def test_odd_bytes_get_4xx_or_a_close_never_a_5xx(edge, template, junk):
    gateway, key, _ = edge
    request = template.replace(b"{key}", key.encode()).replace(b"%s", junk, 1)

    response = exchange(gateway.port, request)

    status = status_of(response)
    if status is None:
        assert response == b"", response[:300]  # closed without an answer: acceptable for garbage
    else:
        assert status < 500, (status, request, response[:1000])
        assert key.encode() not in response, f"the key came back: {response[:1500]!r}"
    assert httpx.get(f"{gateway.url}/_tollway/health", timeout=5).status_code == 200
