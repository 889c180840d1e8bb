"""Streaming against nginx, and upload memory: `python -m bench.stream`.

1. One minitube server (real PostgreSQL and Redis, embedded, in a temp dir)
   gets a real ~80 MB 1080p H.264/AAC MP4 through the upload API. nginx (one
   worker, sendfile on) and a bare aiohttp `web.FileResponse` app serve the
   very file the server stored. wrk (1 thread, 8 connections) then measures,
   against each in turn:
     a. 1 MiB ranges at random 1 MiB-aligned offsets (MB/s),
     b. `Range: bytes=0-1`, the probe Safari sends first (req/s).
2. A real ~1 GiB MP4 is uploaded, streamed from disk by the aiohttp client,
   while the server's RSS is sampled every 50 ms: baseline, peak, growth.

Needs nginx and wrk (apt-get install nginx-light wrk). Runs in ~2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from minitube.embedded import free_port

from .common import (
    MB,
    MiB,
    RssSampler,
    Stack,
    register_and_login,
    require_tools,
    rss,
    stored_media_path,
    table,
    upload,
    wait_for_quiet,
)
from .media import video_of_size
from .tools import Nginx, Wrk, WrkResult, check_range, wait_http

CHUNK = MiB


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per server and test (default 10)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="split each measurement into this many interleaved rounds (default 2), so that "
                             "a burst of load from other processes hits every server alike")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured wrk run before each target (default 1 s)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--stream-mb", type=int, default=80, help="size of the streamed video in MB (default 80)")
    parser.add_argument("--upload-mib", type=int, default=1024, help="size of the uploaded video in MiB (default 1024)")
    parser.add_argument("--skip-upload", action="store_true", help="skip the upload-memory measurement")
    parser.add_argument("--wait-quiet", type=int, default=30,
                        help="on a shared machine, first wait up to this many seconds for other processes "
                             "to go quiet (default 30; 0: don't)")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 60 or not 0 <= args.warmup <= 10 or not 1 <= args.rounds <= args.seconds:
        parser.error("--seconds must be 1..60, --warmup 0..10 and --rounds 1..seconds (wrk takes whole seconds)")
    if not 1 <= args.connections <= 256 or not 1 <= args.threads <= args.connections:
        parser.error("--connections must be 1..256 and --threads 1..connections")
    if not 0 <= args.wait_quiet <= 600:
        parser.error("--wait-quiet must be 0..600")
    if not 8 <= args.stream_mb <= 2000 or not 8 <= args.upload_mib <= 2000:
        parser.error("--stream-mb and --upload-mib must be 8..2000 (the server's default limit is 2 GiB)")
    return args


async def upload_stream_clip(base: str, clip: Path, server_pid: int) -> tuple[str, dict]:
    """The first upload to a fresh server, its RSS sampled too."""
    async with aiohttp.ClientSession() as session:
        token = await register_and_login(session, base)
    return token, await upload_with_rss(base, token, clip, server_pid)


async def upload_with_rss(base: str, token: str, path: Path, server_pid: int) -> dict:
    """Upload `path` while sampling the server's RSS every 50 ms."""
    baseline_samples = []
    for _ in range(5):
        baseline_samples.append(rss(server_pid))
        await asyncio.sleep(0.05)
    baseline = sorted(baseline_samples)[len(baseline_samples) // 2]
    client_before = rss(os.getpid())
    async with aiohttp.ClientSession() as session:
        with RssSampler(server_pid, 0.05) as server_rss, RssSampler(os.getpid(), 0.05) as client_rss:
            started = time.monotonic()
            video = await upload(session, base, token, path, title="upload bench")
            elapsed = time.monotonic() - started
    await asyncio.sleep(0.5)
    return {
        "size": path.stat().st_size,
        "seconds": elapsed,
        "baseline": baseline,
        "peak": server_rss.peak,
        "after": rss(server_pid),
        "samples": len(server_rss.samples),
        "child_peak": server_rss.child_peak,
        "client_growth": client_rss.peak - client_before,
        "video": video,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools = require_tools({"nginx": "/usr/sbin/nginx", "wrk": "/usr/bin/wrk"})
    started = time.monotonic()

    print("preparing media (cached in /tmp/minitube-bench-cache)", flush=True)
    clip = video_of_size(args.stream_mb * MB, "stream")
    big = None if args.skip_upload else video_of_size(args.upload_mib * MiB, "upload")

    print("starting PostgreSQL, Redis and one minitube server", flush=True)
    with Stack("stream") as stack:
        server = stack.start_server()
        token, first_upload = asyncio.run(upload_stream_clip(server.url, clip, server.pid))
        video = first_upload["video"]
        stored = stored_media_path(stack, video["id"])
        size = stored.stat().st_size
        print(f"  video {video['id']}: {size / 1e6:.1f} MB stored at {stored}", flush=True)

        nginx = anchor = None
        try:
            nginx = Nginx(tools["nginx"], stack.root / "nginx", free_port(), stored)
            anchor_port = free_port()
            anchor = subprocess.Popen(
                [sys.executable, "-m", "bench.fileresponse_app", str(stored), str(anchor_port)],
                stdout=subprocess.DEVNULL,
            )
            wait_http(f"http://127.0.0.1:{anchor_port}/healthz", anchor)
            targets = [
                ("minitube", f"{server.url}/videos/{video['id']}/stream", server.pid),
                ("nginx", f"{nginx.url}/video", nginx.pid),
                ("FileResponse", f"http://127.0.0.1:{anchor_port}/video", anchor.pid),
            ]
            for _, url, _ in targets:
                check_range(url, 0, 1, size)
                check_range(url, CHUNK, 2 * CHUNK - 1, size)
            stored.read_bytes()  # into the page cache, for everyone alike
            wait_for_quiet(args.wait_quiet)

            wrk = Wrk(tools["wrk"], stack.root, threads=args.threads, connections=args.connections)
            rss_before = rss(server.pid)
            ranges: dict[str, WrkResult] = {}
            probes: dict[str, WrkResult] = {}
            per_round = args.seconds // args.rounds
            tests = [
                ("1 MiB random ranges", ranges, lambda url, pid, sec: wrk.random_ranges(url, size, CHUNK, sec, pid)),
                ("Range: bytes=0-1", probes, lambda url, pid, sec: wrk.fixed_range(url, "bytes=0-1", sec, pid)),
            ]
            for label, results, run in tests:
                if args.warmup:
                    for name, url, pid in targets:
                        run(url, pid, args.warmup)
                for round_no in range(args.rounds):
                    for name, url, pid in targets:
                        result = run(url, pid, per_round)
                        results[name] = results[name] + result if name in results else result
                        print(f"  {label} -> {name:12} round {round_no + 1}/{args.rounds}: "
                              f"{result.mb_per_s:7,.0f} MB/s {result.rps:8,.0f} req/s, "
                              f"other processes {result.other_cores:.1f} cores", flush=True)
            rss_after_stream = rss(server.pid)
        finally:
            if nginx is not None:
                nginx.stop()
            if anchor is not None:
                anchor.terminate()
                anchor.wait(10)

        upload_result = None
        if big is not None:
            print(f"  uploading {big.stat().st_size / MiB:.0f} MiB while sampling the server's RSS", flush=True)
            upload_result = asyncio.run(upload_with_rss(server.url, token, big, server.pid))

    report(args, size, ranges, probes, rss_before, rss_after_stream, [first_upload, upload_result],
           time.monotonic() - started)
    bad = [name for results in (ranges, probes) for name, r in results.items() if r.error_count]
    bad += [u["video"]["id"] for u in (first_upload, upload_result) if u and u["video"]["size_bytes"] != u["size"]]
    return 1 if bad else 0


def report(args, size, ranges, probes, rss_before, rss_after, uploads, elapsed) -> None:
    print()
    print(f"## Streaming: {size / 1e6:.1f} MB MP4, wrk -t{args.threads} -c{args.connections}, "
          f"{args.seconds:g} s per cell in {args.rounds} interleaved rounds, loopback, "
          f"{_cores()} cores shared by wrk and the server")
    print()
    rows = []
    for name in ranges:
        r, p = ranges[name], probes[name]
        rows.append([
            name,
            f"{r.mb_per_s:,.0f}", f"{r.rps:,.0f}", f"{r.p99_ms:.1f}", f"{r.cpu_percent:.0f}%",
            f"{p.rps:,.0f}", f"{p.p99_ms:.2f}", f"{p.cpu_percent:.0f}%",
            f"{(r.other_cpu_seconds + p.other_cpu_seconds) / (r.seconds + p.seconds):.2f}",
            _errors(r, p),
        ])
    print(table(
        ["server", "1 MiB ranges MB/s", "req/s", "p99 ms", "server CPU", "bytes=0-1 req/s", "p99 ms", "server CPU",
         "other load (cores)", "errors"],
        rows,
    ))
    print()
    ratio_rows = []
    for a, b in (("minitube", "nginx"), ("FileResponse", "nginx"), ("minitube", "FileResponse")):
        ratio_rows.append([
            f"{a} / {b}",
            f"{ranges[a].mb_per_s / ranges[b].mb_per_s:.2f}",
            f"{probes[a].rps / probes[b].rps:.3f}",
            f"{_per_unit(ranges[a]) / _per_unit(ranges[b]):.1f}x",
            f"{_per_request(probes[a]) / _per_request(probes[b]):.1f}x",
        ])
    print(table(["ratio", "1 MiB ranges throughput", "bytes=0-1 req/s", "CPU per MB (ranges)", "CPU per request (0-1)"],
                ratio_rows))
    print()
    print("server CPU: its user+system time over the run (nginx: master + worker), 100% = one core.")
    print("other load: CPU used meanwhile by processes other than the server, wrk and this bench (other")
    print("people's work on a shared machine); well above 0 means the throughput numbers are depressed.")
    print(f"minitube RSS: {rss_before / MiB:.0f} MiB before the wrk runs, {rss_after / MiB:.0f} MiB after.")
    print()
    print("## Upload memory: real MP4s, multipart, streamed from disk by the aiohttp client; "
          "server RSS sampled every 50 ms")
    print()
    rows = []
    for label, u in zip(("first upload, fresh server", "then the big one"), uploads):
        if u is None:
            continue
        rows.append([
            f"{u['size'] / MiB:,.0f} MiB ({label})", f"{u['baseline'] / MiB:.1f} MiB", f"{u['peak'] / MiB:.1f} MiB",
            f"{(u['peak'] - u['baseline']) / MiB:.1f} MiB", f"{u['after'] / MiB:.1f} MiB",
            f"{u['seconds']:.1f} s", f"{u['size'] / u['seconds'] / 1e6:.0f} MB/s", str(u["samples"]),
            f"{u['child_peak'] / MiB:.0f} MiB", f"{u['client_growth'] / MiB:.1f} MiB",
            "yes" if u["video"]["size_bytes"] == u["size"] else f"NO: {u['video']['size_bytes']} bytes",
        ])
    print(table(["upload", "server RSS before", "peak", "growth", "after", "time", "rate", "samples",
                 "probe child peak RSS", "client RSS growth", "stored whole"], rows))
    print("(growth = peak - before; time includes the server's probe and poster frame, done in a child process.)")
    print()
    print(f"total bench time: {elapsed:.0f} s")


def _per_unit(result: WrkResult) -> float:
    return result.server_cpu_seconds / max(result.bytes, 1)


def _per_request(result: WrkResult) -> float:
    return result.server_cpu_seconds / max(result.requests, 1)


def _errors(*results: WrkResult) -> str:
    total = {}
    for result in results:
        for kind, count in result.errors.items():
            if count:
                total[kind] = total.get(kind, 0) + count
    return ", ".join(f"{k} {v}" for k, v in total.items()) or "0"


def _cores() -> int:
    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
