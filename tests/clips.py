"""Real media for tests and benchmarks, encoded with the PyAV (FFmpeg) the
project depends on: H.264/AAC in MP4 and MOV, VP9/Opus in WebM, H.264 in
Matroska, audio-only M4A, and MP4s with their index at the end."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODECS = {
    # container: (format, video codec, audio codec)
    "mp4": ("mp4", "libx264", "aac"),
    "mov": ("mov", "libx264", "aac"),
    "webm": ("webm", "libvpx-vp9", "libopus"),
    "mkv": ("matroska", "libx264", "libopus"),
}


def make_clip(
    path: Path,
    *,
    container: str = "mp4",
    seconds: float = 2.0,
    width: int = 320,
    height: int = 180,
    fps: int = 25,
    audio: bool = True,
    video: bool = True,
    faststart: bool = True,
) -> Path:
    """Encode a short clip (moving colour bars and a tone) and return its path."""
    fmt, vcodec, acodec = CODECS[container]
    options = {"movflags": "+faststart"} if faststart and fmt in ("mp4", "mov") else {}
    with av.open(str(path), "w", format=fmt, options=options) as out:
        vstream = astream = None
        if video:
            vstream = out.add_stream(vcodec, rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            # A keyframe every second so that seeking lands quickly.
            vstream.codec_context.gop_size = fps
            if vcodec == "libx264":
                vstream.codec_context.options = {"preset": "ultrafast"}
            elif vcodec == "libvpx-vp9":
                vstream.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
        if audio:
            astream = out.add_stream(acodec, rate=48000)
            astream.codec_context.layout = "stereo"
        frames = int(seconds * fps)
        if vstream is not None:
            x = np.arange(width, dtype=np.uint16)
            for i in range(frames):
                row = ((x + i * 4) % 256).astype(np.uint8)
                rgb = np.stack([np.tile(row, (height, 1)), np.full((height, width), (i * 9) % 256, np.uint8),
                                np.tile(row[::-1], (height, 1))], axis=-1)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                for packet in vstream.encode(frame):
                    out.mux(packet)
            for packet in vstream.encode(None):
                out.mux(packet)
        if astream is not None:
            samples_per_frame = 960
            total = int(seconds * 48000)
            t0 = 0
            while t0 < total:
                t = (np.arange(samples_per_frame) + t0) / 48000
                tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]).reshape(1, -1), format="flt", layout="stereo")
                frame.sample_rate = 48000
                frame.pts = t0
                frame.time_base = Fraction(1, 48000)
                for packet in astream.encode(frame):
                    out.mux(packet)
                t0 += samples_per_frame
            for packet in astream.encode(None):
                out.mux(packet)
    return path
