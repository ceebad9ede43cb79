"""In-process cost of writing one small answer, µs: ``gateway.responses.Response`` built, prepared
and ended, plus the repeat aiohttp's ``finish_response`` makes, against a real ``StreamWriter``
over a transport that only counts bytes (no socket: the ``send`` itself is left out).

    python bench/answer_cost.py [TREE ...] [--answers 20000] [--rounds 5]

Each TREE (default: this checkout) is a checkout whose gateway/responses.py is measured, each in
its own interpreter, interleaved round by round; the best of each tree's rounds is reported.
docs/performance.md, "2026-11-30: the server side", has what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def measure(answers: int) -> float:
    from aiohttp.base_protocol import BaseProtocol
    from aiohttp.http_writer import StreamWriter
    from aiohttp.test_utils import make_mocked_request

    from gateway.responses import Response

    class Transport:
        def __init__(self) -> None:
            self.sent = 0

        def write(self, data: bytes) -> None:
            self.sent += len(data)

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, name: str, default: object = None) -> object:
            return default

    class Protocol(BaseProtocol):
        server_header = "Tollway"
        ssl_context = None
        peername = None
        sockname = None

    loop = asyncio.get_running_loop()
    protocol = Protocol(loop)
    transport = Transport()
    request = make_mocked_request("GET", "/echo/v1/", headers={"Host": "gw"}, protocol=protocol, transport=transport)
    protocol.transport = transport  # type: ignore[assignment]
    started = time.perf_counter()
    for _ in range(answers):
        request._payload_writer = StreamWriter(protocol, loop)
        response = Response(status=200, body=b'{"ok":true}')
        response.headers["Content-Type"] = "application/json"
        response.headers["X-Request-ID"] = "0123456789abcdef"
        await response.prepare(request)
        await response.write_eof()
        await response.prepare(request)  # finish_response's
        await response.write_eof()
    assert transport.sent > 0
    return (time.perf_counter() - started) / answers * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="*", default=[str(ROOT)])
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # bench/gateway.py would shadow the gateway package of the tree measured (the cwd).
        sys.path[:] = [os.getcwd(), *(p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent)]
        print(asyncio.run(measure(args.answers)))
        return
    results: dict[str, list[float]] = {tree: [] for tree in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--answers", str(args.answers)],
                cwd=tree, env={**os.environ, "PYTHONPATH": tree}, capture_output=True, text=True, check=True,
            ).stdout
            results[tree].append(float(out))
    for tree, values in results.items():
        print(f"{tree}: best {min(values):.2f} µs/answer, median {statistics.median(values):.2f}, "
              f"rounds {[round(v, 2) for v in values]}")


if __name__ == "__main__":
    main()
