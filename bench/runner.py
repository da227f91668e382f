"""Benchmark of runner.py's request path against a bare asyncio + httpx loop.

    python bench/runner.py [--tests 3072] [--parallel 16] [--target canned]

Starts a target OpenAI-compatible server in its own process (so it does not share the GIL with the
client), then in one run measures, on the same request bodies and concurrency:

  (a) a bare asyncio + httpx loop with httpx's stock transport (the baseline the targets name),
  (a') the same bare loop on the runner's HTTP path (httpx.Request straight into its lean transport),
       which isolates the runner's own per-test work,
  (b) the runner as a library call (fresh cache, quiet): generate, send, grade, cache, write records,
  (c) cache replay: the same run again into a new folder, every answer from the cache,

and prints each rate in tests/s with the ratios. Targets: (b) >= 0.9 x (a) and >= 1,500 tests/s on two
cores; (c) >= 20,000 tests/s.

Targets are pluggable: `TARGETS` maps a name to a function that starts a server and returns
(base URL, stop function). `canned` is a minimal asyncio HTTP/1.1 keep-alive server that answers every
request with the same completion at zero latency, so the client is what gets measured. A llama-server
target (real model, real latency) can be added beside it with the same signature.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CANNED_BODY = (b'{"id":"bench","object":"chat.completion","created":0,"model":"bench","choices":[{"index":0,'
               b'"message":{"role":"assistant","content":"Let me compute it.\\n<answer>42</answer>"},'
               b'"finish_reason":"stop"}],"usage":{"prompt_tokens":60,"completion_tokens":12,"total_tokens":72}}')
CANNED_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                   % len(CANNED_BODY)) + CANNED_BODY

CONFIG = """
name: bench
precision:
  bench: {{count: {count}, maxrounds: 1}}
tasks:
  - name: arithmetic
    grids:
      small: {{length: [2, 3, 4, 5, 6, 7, 8, 9], max_depth: [0, 1, 2]}}
"""
POINTS = 24


# -- targets -------------------------------------------------------------------------------------------

class _Canned(asyncio.Protocol):
    """HTTP/1.1 keep-alive: parse each request's head and Content-Length, answer the canned response."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            length = int(head[i + 15:].split(b"\r\n", 1)[0]) if i >= 0 else 0
            if len(self.buf) < end + 4 + length:
                break
            self.buf = self.buf[end + 4 + length:]
            out.append(CANNED_RESPONSE)
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]


def _serve_canned(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Canned, sock=sock)
        await server.serve_forever()

    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())


def start_canned() -> tuple[str, Callable[[], None]]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    port = sock.getsockname()[1]
    proc = mp.get_context("fork").Process(target=_serve_canned, args=(sock,), daemon=True)
    proc.start()
    sock.close()

    def stop() -> None:
        proc.terminate()
        proc.join(5)

    return f"http://127.0.0.1:{port}", stop


TARGETS: dict[str, Callable[[], tuple[str, Callable[[], None]]]] = {"canned": start_canned}


# -- measurements ---------------------------------------------------------------------------------------

def request_bodies(config: Path) -> list[bytes]:
    """The exact bodies the runner sends for the bench config (round 1 of every point)."""
    from reasonscape.runner.plan import TestSequence, build_points, load_spec, make_request

    spec = load_spec(config, ROOT / "templates" / "zeroshot-nosys.json", ROOT / "samplers" / "greedy-2k.json",
                     "bench")
    count = spec.level.count
    return [make_request(spec, plan, t.question).content
            for plan in build_points(spec) for t in TestSequence(plan).take(0, count)]


def bare_loop(url: str, bodies: list[bytes], parallel: int, lean: bool) -> float:
    """tests/s of a plain asyncio worker pool posting the bodies and decoding the JSON answers.

    lean=False: httpx.AsyncClient with its stock transport (what a bare loop would use).
    lean=True: the runner's HTTP path (httpx.Request straight into FastHTTPTransport), nothing else.
    """
    import httpx
    import orjson

    import reasonscape.runner.client  # noqa: F401  (the same environment fix-ups as the runner gets)
    from reasonscape.runner.transport import FastHTTPTransport

    target = httpx.URL(url + "/v1/chat/completions")
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel)

    async def main() -> float:
        it = iter(bodies)
        if lean:
            transport = FastHTTPTransport(limits)
            ext = {"timeout": httpx.Timeout(60).as_dict()}

            async def post(body: bytes) -> bytes:
                r = await transport.handle_async_request(httpx.Request("POST", target, headers=headers,
                                                                       content=body, extensions=ext))
                return await r.aread()
        else:
            client = httpx.AsyncClient(limits=limits, timeout=60, headers=headers)

            async def post(body: bytes) -> bytes:
                return (await client.post(target, content=body)).content

        async def worker() -> None:
            for body in it:
                orjson.loads(await post(body))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(parallel)))
        rate = len(bodies) / (time.perf_counter() - t0)
        await (transport.aclose() if lean else client.aclose())
        return rate

    return asyncio.run(main())


def runner_rate(url: str, config: Path, work: Path, parallel: int, output: str) -> tuple[float, int]:
    from reasonscape.runner import run_experiment

    t0 = time.perf_counter()
    result = run_experiment(config=str(config), template=str(ROOT / "templates" / "zeroshot-nosys.json"),
                            sampler=str(ROOT / "samplers" / "greedy-2k.json"), model="bench", apibase=url,
                            output=str(work / output), cache=str(work / "cache"), parallel=parallel, quiet=True)
    elapsed = time.perf_counter() - t0
    return result.counts.tests / elapsed, result.counts.requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=3072, help="tests in the bench config (rounded to 24 points)")
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--target", choices=sorted(TARGETS), default="canned")
    ap.add_argument("--repeat", type=int, default=2, help="best of N for each measurement")
    args = ap.parse_args()
    count = max(1, args.tests // POINTS)
    with tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp:
        work = Path(tmp)
        config = work / "bench.yaml"
        config.write_text(CONFIG.format(count=count))
        bodies = request_bodies(config)
        url, stop = TARGETS[args.target]()
        try:
            time.sleep(0.3)
            bare_loop(url, bodies[:200], args.parallel, lean=True)  # warm-up
            stock = max(bare_loop(url, bodies, args.parallel, lean=False) for _ in range(args.repeat))
            fast = max(bare_loop(url, bodies, args.parallel, lean=True) for _ in range(args.repeat))
            runs = []
            for i in range(args.repeat):
                (work / "cache").exists() and _rm(work / "cache")
                runs.append(runner_rate(url, config, work, args.parallel, f"fresh{i}"))
            runner, sent = max(runs)
            replay, replay_sent = max(runner_rate(url, config, work, args.parallel, f"replay{i}")
                                      for i in range(args.repeat))
        finally:
            stop()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"bench/runner.py: {len(bodies)} tests ({POINTS} arithmetic points x {count}), --parallel {args.parallel}, "
          f"target {args.target}, {cores} cores, best of {args.repeat}")
    bound = 1 / (1 / fast + 1 / replay)
    print(f"(a)  bare asyncio + httpx.AsyncClient loop    : {stock:8.0f} tests/s")
    print(f"(a') bare loop on the runner's HTTP path      : {fast:8.0f} tests/s")
    print(f"(b)  runner, fresh cache ({sent} requests)     : {runner:8.0f} tests/s   "
          f"{runner / stock:.2f}x (a)   {runner / fast:.2f}x (a')")
    print(f"(c)  runner, cache replay ({replay_sent} requests)      : {replay:8.0f} tests/s   "
          f"{replay / runner:.1f}x (b)")
    print(f"bound: (a') HTTP at {1e6 / fast:.0f} us/test + the runner's own work at {1e6 / replay:.0f} us/test "
          f"(generate, build, grade, record: what (c) measures) -> {bound:.0f} tests/s if done back to back; "
          f"(b) reaches {runner / bound:.2f} of it")
    print(f"targets: (b) >= 0.9x (a) [{'ok' if runner >= 0.9 * stock else 'MISS'}], (b) >= 1500/s "
          f"[{'ok' if runner >= 1500 else 'MISS'}], (c) >= 20000/s [{'ok' if replay >= 20000 else 'MISS'}]")

def _rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


if __name__ == "__main__":
    main()
