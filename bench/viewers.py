"""Thousands of "watching now" WebSockets on one server process:
`python -m bench.viewers [--sockets 10000]`.

Starts embedded PostgreSQL and Redis and one minitube server (open-file
limit raised, per-address socket cap lifted), uploads a small real clip, then
opens N WebSockets to `/videos/{id}/active-viewers` from this process, at most
`--concurrency` handshakes at a time. Every socket is a distinct anonymous
viewer: the client session keeps no cookies (aiohttp.DummyCookieJar), so the
server issues a fresh viewer cookie to each socket and never sees it again.

Measured: connect time and rate; the time from the last connect until every
socket has been told active_viewers == N (the server coalesces counts); the
server's RSS before and after (memory per socket), and Redis's; then the time
to close them all and until a fresh socket is told active_viewers == 1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import statistics
import sys
import time

import aiohttp
import psutil

from .common import MiB, Stack, raise_nofile, register_and_login, rss, table, upload, wait_for_quiet
from .media import small_clip
from .tools import _busy_seconds


class Viewer:
    __slots__ = ("ws", "task", "count", "reached", "messages")

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.task: asyncio.Task | None = None
        self.count: int | None = None  # the last active_viewers this socket was told
        self.reached: float | None = None  # when it was first told the target
        self.messages = 0


class Run:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.target = args.sockets
        self.viewers: list[Viewer] = []
        self.failures: collections.Counter[str] = collections.Counter()
        self.handshakes: list[float] = []
        self.closed_by_server = 0

    async def read(self, viewer: Viewer) -> None:
        """Follow one socket's messages (aiohttp answers the server's pings)."""
        async for msg in viewer.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            viewer.messages += 1
            try:
                count = json.loads(msg.data)["active_viewers"]
            except (ValueError, KeyError, TypeError):
                continue
            viewer.count = count
            if count == self.target and viewer.reached is None:
                viewer.reached = time.monotonic()
        self.closed_by_server += 1

    async def open_one(self, session: aiohttp.ClientSession) -> Viewer | None:
        started = time.monotonic()
        try:
            ws = await asyncio.wait_for(
                session.ws_connect(self.url, autoping=True, compress=15 if self.args.compress else 0),
                self.args.connect_timeout,
            )
        except asyncio.TimeoutError:
            self.failures["timeout"] += 1
            return None
        except aiohttp.WSServerHandshakeError as exc:
            self.failures[f"HTTP {exc.status}"] += 1
            return None
        except (aiohttp.ClientError, OSError) as exc:
            self.failures[type(exc).__name__] += 1
            return None
        self.handshakes.append(time.monotonic() - started)
        viewer = Viewer(ws)
        viewer.task = asyncio.create_task(self.read(viewer))
        return viewer

    async def connect_all(self, session: aiohttp.ClientSession, deadline: float) -> None:
        todo = iter(range(self.target))
        started = time.monotonic()
        next_report = 1000

        async def worker() -> None:
            nonlocal next_report
            for _ in todo:
                if time.monotonic() > deadline:
                    self.failures["bench deadline"] += 1
                    continue
                viewer = await self.open_one(session)
                if viewer is not None:
                    self.viewers.append(viewer)
                    if len(self.viewers) >= next_report:
                        elapsed = time.monotonic() - started
                        print(f"  {len(self.viewers):6d} open after {elapsed:6.1f}s "
                              f"({len(self.viewers) / elapsed:,.0f}/s)", flush=True)
                        next_report += 1000

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))

    async def wait_until(self, predicate, timeout: float, step: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(step)
        return True


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def settle_rss(pid: int, seconds: float = 1.0) -> int:
    """The median of a few RSS samples taken after a pause."""
    samples = []
    for _ in range(5):
        await asyncio.sleep(seconds / 5)
        samples.append(rss(pid))
    return int(statistics.median(samples))


async def bench(args: argparse.Namespace, stack: Stack, server, redis_pid: int) -> dict:
    base = server.url
    results: dict = {}
    async with aiohttp.ClientSession() as plain:
        token = await register_and_login(plain, base)
        video = await upload(plain, base, token, small_clip(), title="viewers bench")
    url = f"ws://127.0.0.1:{server.port}/videos/{video['id']}/active-viewers"
    run = Run(args, url)

    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=args.connect_timeout)
    # DummyCookieJar keeps nothing: no socket ever sends the viewer cookie
    # the server sets, so each one is a new anonymous viewer.
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        gc.collect()
        results["rss_before"] = await settle_rss(server.pid)
        results["redis_before"] = rss(redis_pid)
        wait_for_quiet(args.wait_quiet)
        cpu0, redis_cpu0, own_cpu0 = cpu_seconds(server.pid), cpu_seconds(redis_pid), cpu_seconds(os.getpid())
        busy0 = _busy_seconds()

        print(f"opening {args.sockets} WebSockets, {args.concurrency} at a time", flush=True)
        started = time.monotonic()
        await run.connect_all(session, started + args.connect_deadline)
        last_connect = time.monotonic()
        connected = len(run.viewers)
        results.update(connected=connected, connect_seconds=last_connect - started, failures=dict(run.failures))
        results["connect_cpu"] = cpu_seconds(server.pid) - cpu0
        results["connect_redis_cpu"] = cpu_seconds(redis_pid) - redis_cpu0
        results["connect_own_cpu"] = cpu_seconds(os.getpid()) - own_cpu0
        if run.handshakes:
            ordered = sorted(run.handshakes)
            results["handshake_p50"] = ordered[len(ordered) // 2]
            results["handshake_p99"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

        # Every socket is to be told active_viewers == the number connected.
        run.target = connected
        for viewer in run.viewers:
            if viewer.count == connected and viewer.reached is None:
                viewer.reached = last_connect
        print(f"{connected} open; waiting until every socket is told active_viewers == {connected}", flush=True)
        converged = await run.wait_until(
            lambda: all(v.reached is not None for v in run.viewers), args.converge_timeout
        )
        if converged and run.viewers:
            results["converge_seconds"] = max(max(v.reached for v in run.viewers) - last_connect, 0.0)
        else:
            results["converge_seconds"] = None
            results["not_converged"] = sum(1 for v in run.viewers if v.reached is None)
            results["counts_seen"] = collections.Counter(v.count for v in run.viewers).most_common(5)
        results["messages"] = sum(v.messages for v in run.viewers)
        results["ramp_cpu"] = cpu_seconds(server.pid) - cpu0
        results["ramp_redis_cpu"] = cpu_seconds(redis_pid) - redis_cpu0
        results["ramp_own_cpu"] = cpu_seconds(os.getpid()) - own_cpu0
        results["ramp_seconds"] = time.monotonic() - started
        results["ramp_other_cores"] = max(
            _busy_seconds() - busy0 - results["ramp_cpu"] - results["ramp_redis_cpu"] - results["ramp_own_cpu"], 0.0
        ) / results["ramp_seconds"]

        results["rss_open"] = await settle_rss(server.pid)
        results["redis_open"] = rss(redis_pid)

        # Hold them open a while: heartbeats and presence renewal keep going.
        if args.hold:
            print(f"holding {connected} sockets open for {args.hold:g}s", flush=True)
            cpu_hold = cpu_seconds(server.pid)
            await asyncio.sleep(args.hold)
            results["hold_cpu_percent"] = 100 * (cpu_seconds(server.pid) - cpu_hold) / args.hold
            results["still_open"] = sum(1 for v in run.viewers if not v.ws.closed)
            results["rss_held"] = rss(server.pid)

        print(f"closing {connected} sockets", flush=True)
        close_started = time.monotonic()
        for viewer in run.viewers:
            if viewer.task is not None:
                viewer.task.cancel()
        semaphore = asyncio.Semaphore(args.concurrency)

        async def close(viewer: Viewer) -> None:
            async with semaphore:
                try:
                    await asyncio.wait_for(viewer.ws.close(), 10)
                except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
                    run.failures["close"] += 1

        await asyncio.wait_for(asyncio.gather(*(close(v) for v in run.viewers)), args.converge_timeout)
        closed = time.monotonic()
        results["close_seconds"] = closed - close_started

        fresh_run = Run(args, url)
        fresh_run.target = 1
        fresh = await fresh_run.open_one(session)
        if fresh is None:
            raise RuntimeError(f"the fresh socket could not connect: {dict(fresh_run.failures)}")
        first_seen = await fresh_run.wait_until(lambda: fresh.count is not None, 10)
        results["fresh_first_count"] = fresh.count if first_seen else None
        reached = await fresh_run.wait_until(lambda: fresh.reached is not None, args.converge_timeout)
        results["fresh_seconds"] = fresh.reached - closed if reached else None
        results["fresh_last_count"] = fresh.count
        await fresh.ws.close()
        results["rss_closed"] = await settle_rss(server.pid)
        results["redis_closed"] = rss(redis_pid)
        results["server_closed_during_run"] = run.closed_by_server
    return results


def report(args: argparse.Namespace, r: dict, elapsed: float) -> None:
    n = max(r["connected"], 1)
    per_socket = (r["rss_open"] - r["rss_before"]) / n
    redis_per_socket = (r["redis_open"] - r["redis_before"]) / n
    converge = f"{r['converge_seconds']:.2f} s" if r["converge_seconds"] is not None else (
        f"NOT reached within {args.converge_timeout:g} s ({r['not_converged']} sockets short; "
        f"counts seen {r['counts_seen']})")
    fresh = (f"{r['fresh_seconds']:.2f} s (first told {r['fresh_first_count']})" if r["fresh_seconds"] is not None
             else f"NOT within {args.converge_timeout:g} s (first told {r['fresh_first_count']}, "
                  f"last {r['fresh_last_count']})")
    rows = [
        ["sockets opened", f"{r['connected']:,} of {args.sockets:,}"
         + (f" (failures: {r['failures']})" if r["failures"] else "")],
        ["permessage-deflate offered", "yes (like browsers)" if args.compress else "no"],
        ["connect time (all)", f"{r['connect_seconds']:.1f} s"],
        ["connect rate", f"{r['connected'] / r['connect_seconds']:,.0f} sockets/s"],
        ["handshake p50 / p99", f"{r.get('handshake_p50', 0) * 1000:.0f} / {r.get('handshake_p99', 0) * 1000:.0f} ms"
         f" ({args.concurrency} in flight)"],
        ["last connect -> all told active_viewers == N", converge],
        ["count messages received (all sockets)", f"{r['messages']:,} ({r['messages'] / n:.1f} per socket)"],
        ["server CPU, connect + converge", f"{r['ramp_cpu']:.1f} s over {r['ramp_seconds']:.1f} s "
         f"({1e3 * r['ramp_cpu'] / n:.2f} ms per socket)"],
        ["Redis CPU, connect + converge", f"{r['ramp_redis_cpu']:.1f} s"],
        ["bench client CPU, connect + converge", f"{r['ramp_own_cpu']:.1f} s"],
        ["other processes' CPU meanwhile", f"{r['ramp_other_cores']:.2f} cores (PostgreSQL's included)"],
        ["server RSS before", f"{r['rss_before'] / MiB:.1f} MiB"],
        ["server RSS with N open", f"{r['rss_open'] / MiB:.1f} MiB"],
        ["server memory per socket", f"{per_socket / 1024:.1f} KiB"],
        ["Redis RSS growth per socket", f"{redis_per_socket:.0f} B"],
    ]
    if "hold_cpu_percent" in r:
        rows.append([f"server CPU while holding {n:,} idle ({args.hold:g} s)", f"{r['hold_cpu_percent']:.1f}% of a core"
                     f" ({r['still_open']:,} still open)"])
    rows += [
        ["close all", f"{r['close_seconds']:.1f} s"],
        ["all closed -> fresh socket told active_viewers == 1", fresh],
        ["server RSS after closing", f"{r['rss_closed'] / MiB:.1f} MiB"],
    ]
    if r["server_closed_during_run"]:
        rows.append(["sockets the server closed during the run", str(r["server_closed_during_run"])])
    print()
    print(f"## Viewers: {args.sockets:,} WebSockets to one video, one server process, {os.cpu_count()} cores "
          "shared with this client")
    print()
    print(table(["measure", "value"], rows))
    print()
    print(f"total bench time: {elapsed:.0f} s")


def log_problems(path) -> collections.Counter[str]:
    """WARNING/ERROR lines of the server log, counted by message (the
    timestamp cut off)."""
    counts: collections.Counter[str] = collections.Counter()
    with open(path, errors="replace") as log:
        for line in log:
            for level in (" WARNING ", " ERROR ", " CRITICAL "):
                if level in line:
                    counts[level.strip() + " " + line.split(level, 1)[1].strip()] += 1
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.viewers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000, help="WebSockets to open (default 10000)")
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight at once (default 200)")
    parser.add_argument("--compress", action="store_true",
                        help="offer permessage-deflate like a browser does (the server accepts it)")
    parser.add_argument("--hold", type=float, default=12,
                        help="seconds to keep them all open before closing (default 12: past one heartbeat)")
    parser.add_argument("--wait-quiet", type=int, default=30,
                        help="on a shared machine, first wait up to this many seconds for other processes "
                             "to go quiet (default 30; 0: don't)")
    parser.add_argument("--connect-timeout", type=float, default=30, help="per handshake (default 30 s)")
    parser.add_argument("--connect-deadline", type=float, default=240, help="for all handshakes (default 240 s)")
    parser.add_argument("--converge-timeout", type=float, default=120,
                        help="for the counts to settle, and for closing (default 120 s)")
    args = parser.parse_args(argv)
    if not 1 <= args.sockets <= 50_000 or not 1 <= args.concurrency <= 2000:
        parser.error("--sockets must be 1..50000 and --concurrency 1..2000")
    if not 0 <= args.hold <= 120:
        parser.error("--hold must be 0..120")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Each socket is a descriptor here and another in the server.
    wanted = args.sockets + 1000
    limit = raise_nofile(wanted)
    if limit < wanted:
        print(f"bench: the open-file limit is {limit} (hard limit); {args.sockets} sockets need about {wanted}. "
              f"Run with fewer --sockets or raise the hard limit (ulimit -Hn, /etc/security/limits.conf).",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    print("starting PostgreSQL, Redis and one minitube server", flush=True)
    with Stack("viewers") as stack:
        server = stack.start_server(nofile=limit, sockets_per_address=100_000)
        assert stack.redis is not None and stack.redis._proc is not None
        results = asyncio.run(bench(args, stack, server, stack.redis._proc.pid))
        results["server_log_problems"] = log_problems(server.log_path)
    report(args, results, time.monotonic() - started)
    if results["server_log_problems"]:
        print("server log warnings/errors, by message:")
        for message, count in results["server_log_problems"].most_common(10):
            print(f"  {count:7,} x {message[:200]}")
    ok = results["converge_seconds"] is not None and results["fresh_seconds"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
