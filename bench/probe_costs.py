"""Where the time of a `Range: bytes=0-1` request goes in minitube:
`python -m bench.probe_costs [FILE]`.

Runs four servers, each one layer more of minitube than the last, all
answering the same tiny range from an already-open file, and measures server
CPU per request with wrk:

  pread               a bare aiohttp handler: os.pread + web.Response
  handler             minitube.streaming.stream (its open-file cache pre-filled,
                      so no database), no middlewares
  + middlewares       plus the middlewares and on_response_prepare hooks of
                      minitube.app.create_app, log level WARNING
  + access log        plus the INFO access-log line per request, written to a
                      file (as `minitube serve` writes its stdout)

No database or Redis is involved. FILE defaults to the cached bench video.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from minitube.embedded import free_port

from .common import require_tools, table, wait_for_quiet
from .tools import Wrk, WrkResult, wait_http

VARIANTS = ("pread", "handler", "+ middlewares", "+ access log")


def serve(variant: str, path: Path, port: int) -> None:
    """The child process: one variant on one port."""
    from aiohttp import web

    from minitube import streaming
    from minitube.app import create_app
    from minitube.keys import media_cache_key, settings_key
    from minitube.settings import Settings

    settings = Settings(database_url="postgresql://unused", redis_url="redis://unused")
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size

    async def pread(request: web.Request) -> web.Response:
        first, last = 0, 1  # the bench only asks for bytes=0-1
        return web.Response(
            status=206,
            body=os.pread(fd, last - first + 1, first),
            headers={"Content-Range": f"bytes {first}-{last}/{size}", "Content-Type": "video/mp4",
                     "Accept-Ranges": "bytes"},
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    full = variant in ("+ middlewares", "+ access log")
    reference = create_app(settings)  # only read for its middlewares and hooks; never started
    app = web.Application(middlewares=list(reference.middlewares) if full else [])
    app[settings_key] = settings
    if full:
        for hook in reference.on_response_prepare:
            app.on_response_prepare.append(hook)
    if variant == "pread":
        app.add_routes([web.get("/videos/{id}/stream", pread)])
    else:
        cache = streaming.MediaCache(app)
        file = open(path, "rb", buffering=0)
        stat = os.fstat(file.fileno())
        cache._entries[1] = streaming.MediaFile(1, path, "video/mp4", stat.st_size, int(stat.st_mtime), file)
        app[media_cache_key] = cache
        app.add_routes([web.get("/videos/{id:\\d+}/stream", streaming.stream)])
    app.add_routes([web.get("/healthz", healthz)])
    logging.basicConfig(
        level="INFO" if variant == "+ access log" else "WARNING",
        format="%(asctime)s %(levelname)s %(name)s %(message)s",  # as minitube.__main__ sets it
        stream=sys.stdout,
    )
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe_costs", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, help="a media file (default: the cached bench video)")
    parser.add_argument("--seconds", type=int, default=4, help="per variant and round (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--wait-quiet", type=int, default=30, help="wait up to this long for a quiet machine")
    parser.add_argument("--serve", nargs=2, metavar=("VARIANT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], args.file, int(args.serve[1]))
        return 0
    if not 1 <= args.seconds <= 30 or not 1 <= args.rounds <= 10:
        parser.error("--seconds must be 1..30 and --rounds 1..10")
    tools = require_tools({"wrk": "/usr/bin/wrk"})
    path = args.file
    if path is None:
        from .media import video_of_size

        path = video_of_size(80_000_000, "stream")

    work = Path(tempfile.mkdtemp(prefix="minitube-bench-costs-"))
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    results: dict[str, WrkResult] = {}
    try:
        for variant in VARIANTS:
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.probe_costs", str(path), "--serve", variant, str(port)],
                stdout=open(work / f"{VARIANTS.index(variant)}.log", "wb"), stderr=subprocess.STDOUT,
            )
            servers[variant] = (proc, port)
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        wait_for_quiet(args.wait_quiet)
        wrk = Wrk(tools["wrk"], work)
        for _ in range(args.rounds):
            for variant, (proc, port) in servers.items():
                result = wrk.fixed_range(f"http://127.0.0.1:{port}/videos/1/stream", "bytes=0-1", args.seconds,
                                         proc.pid)
                if result.error_count:
                    raise RuntimeError(f"{variant}: errors {result.errors}")
                results[variant] = results[variant] + result if variant in results else result
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    rows, previous = [], None
    for variant in VARIANTS:
        r = results[variant]
        per_request = 1e6 * r.server_cpu_seconds / r.requests
        rows.append([variant, f"{r.rps:,.0f}", f"{per_request:.0f}",
                     f"+{per_request - previous:.0f}" if previous is not None else "",
                     f"{r.other_cores:.2f}"])
        previous = per_request
    print()
    print(f"## Range: bytes=0-1, one process each, wrk -t1 -c8, {args.rounds} x {args.seconds} s interleaved")
    print()
    print(table(["server", "req/s", "server CPU µs/request", "added by this layer", "other load (cores)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
