"""Real H.264/AAC MP4s of a chosen size, cached under /tmp so reruns are fast.

Encoding 1080p with tests.clips.make_clip runs at ~1 s of video per second
and gives ~0.5 MB per second of video, so a big file is made by encoding one
short clip and copying its packets (no re-encoding) back to back, with
timestamps shifted, into one fast-start MP4: a real video the server probes
and accepts, of any size."""

from __future__ import annotations

import math
import os
import time
from fractions import Fraction
from pathlib import Path

CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR", "/tmp/minitube-bench-cache"))
BASE_SECONDS = 8
BASE_SIZE = (1920, 1080)


def base_clip() -> Path:
    from tests.clips import make_clip

    width, height = BASE_SIZE
    path = CACHE_DIR / f"base-{width}x{height}-{BASE_SECONDS}s.mp4"
    if not path.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        started = time.monotonic()
        make_clip(partial, seconds=BASE_SECONDS, width=width, height=height)
        partial.rename(path)
        print(f"  encoded {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.1f}s", flush=True)
    return path


def video_of_size(target_bytes: int, name: str) -> Path:
    """A real MP4 of at least `target_bytes` (cached by name and size)."""
    path = CACHE_DIR / f"{name}-{target_bytes}.mp4"
    if path.exists():
        return path
    base = base_clip()
    copies = max(1, math.ceil(target_bytes / base.stat().st_size))
    partial = path.with_suffix(".partial.mp4")
    started = time.monotonic()
    concat_copies(base, partial, copies)
    partial.rename(path)
    print(f"  made {path} ({path.stat().st_size / 1e6:.0f} MB, {copies} copies) in {time.monotonic() - started:.1f}s",
          flush=True)
    return path


def concat_copies(src: Path, dst: Path, copies: int) -> None:
    """`copies` back-to-back stream copies of src in one fast-start MP4."""
    import av

    with av.open(str(src)) as probe:
        first, end = Fraction(0), Fraction(0)
        for packet in probe.demux():
            if packet.dts is not None and packet.duration is not None:
                first = min(first, packet.dts * packet.time_base)  # AAC priming starts below 0
                end = max(end, (max(packet.pts, packet.dts) + packet.duration) * packet.time_base)
    # One shift for every stream (whole milliseconds), so audio stays in sync
    # and each copy's timestamps start after the previous copy's end.
    shift_seconds = Fraction(math.ceil((end - first) * 1000), 1000)

    with av.open(str(dst), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        mapping = {}
        for copy in range(copies):
            with av.open(str(src)) as source:
                streams = [s for s in source.streams if s.type in ("video", "audio")]
                if not mapping:
                    mapping = {s.index: out.add_stream_from_template(s) for s in streams}
                for packet in source.demux(*streams):
                    if packet.dts is None:  # the demuxer's end-of-stream flush packet
                        continue
                    shift = int(shift_seconds * copy / packet.time_base)
                    packet.dts += shift
                    if packet.pts is not None:
                        packet.pts += shift
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)


def small_clip() -> Path:
    """A 2 s 320x180 clip: just enough for a video row with real media."""
    from tests.clips import make_clip

    path = CACHE_DIR / "small-320x180-2s.mp4"
    if not path.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        make_clip(partial, seconds=2)
        partial.rename(path)
    return path
