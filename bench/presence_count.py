"""What "watching now" costs Redis as the audience of one video grows:
`python -m bench.presence_count [N ...]`.

minitube.viewers keeps, per video, a sorted set of viewers scored by expiry
(and per viewer a set of their sockets). A count is one ZCOUNT of unexpired
viewers; a socket leaving is one script (minitube.viewers.LEAVE_LUA). This
times both on sets of N viewers shaped like the server's.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis

from minitube.embedded import EmbeddedRedis
from minitube.viewers import LEAVE_LUA, sockets_set, viewers_set

from .common import table

VIDEO = 1


def timed(call, limit_calls=2000, limit_seconds=2.0) -> float:
    """Seconds per call, over as many calls as fit the limits."""
    calls, started = 0, time.perf_counter()
    while calls < limit_calls and time.perf_counter() - started < limit_seconds:
        call(calls)
        calls += 1
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> int:
    sizes = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [1000, 10000, 100000]
    if any(not 1 <= n <= 200_000 for n in sizes):
        print("sizes must be 1..200000", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="minitube-bench-presence-"))
    server = EmbeddedRedis(root, persist=False)
    server.start()
    rows = []
    try:
        client = redis.Redis.from_url(server.url)
        leave = client.register_script(LEAVE_LUA)
        process = secrets.token_hex(6)
        for n in sizes:
            client.flushdb()
            now = time.time()
            viewers = [f"a:{secrets.token_urlsafe(16)}:127.0.0.1" for _ in range(n)]
            for start in range(0, n, 5000):
                batch = viewers[start:start + 5000]
                with client.pipeline(transaction=False) as pipe:
                    pipe.zadd(viewers_set(VIDEO), {v: now + 25 for v in batch})
                    for i, v in enumerate(batch):
                        pipe.zadd(sockets_set(VIDEO, v), {f"{process}:{start + i}": now + 25})
                    pipe.execute()
            alive = f"({now}"
            count = timed(lambda _: client.zcount(viewers_set(VIDEO), alive, "+inf"))
            assert client.zcount(viewers_set(VIDEO), alive, "+inf") == n
            leaves = min(n, 1000)
            per_leave = timed(
                lambda i: leave(keys=[sockets_set(VIDEO, viewers[i]), viewers_set(VIDEO)],
                                args=[f"{process}:{i}", viewers[i], now]),
                limit_calls=leaves,
            )
            rows.append([f"{n:,}", f"{count * 1e6:.0f} µs", f"{per_leave * 1e6:.0f} µs"])
        client.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(table(["viewers of one video", "count (ZCOUNT), round trip", "leave (LEAVE_LUA), round trip"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
