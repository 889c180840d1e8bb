"""Reading video files: what container they are, probing, fast-start
remuxing and poster frames.

Uploads are hostile input for a C library, so the work runs in a child
process (`python -m minitube.media process FILE WORKDIR`): a crash or a hang
in the demuxer costs that child, never the server, and it has a time limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import struct
import sys
from fractions import Fraction
from pathlib import Path

from .errors import NotAVideo

# Container -> (content type, file extension).
CONTAINERS = {
    "mp4": ("video/mp4", ".mp4"),
    "mov": ("video/quicktime", ".mov"),
    "webm": ("video/webm", ".webm"),
    "mkv": ("video/x-matroska", ".mkv"),
}
SNIFF_BYTES = 64
THUMBNAIL_MAX_WIDTH = 640
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# Top-level atoms that may open a QuickTime file written without `ftyp`.
QUICKTIME_FIRST_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip"}


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    container: str
    content_type: str
    extension: str
    size_bytes: int
    duration_seconds: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    # The file to store: the upload itself, or its fast-start remux.
    path: str
    thumbnail_path: str | None


def sniff_container(head: bytes) -> str | None:
    """The container named by a file's first bytes, or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in QUICKTIME_FIRST_ATOMS:
        return "mov"
    if head.startswith(EBML_MAGIC):
        return "webm" if b"webm" in head[:SNIFF_BYTES] else "mkv"
    return None


def describe_unknown(head: bytes) -> str:
    """A short human guess at what a non-video file is, for the 415 message."""
    if not head:
        return "The file is empty."
    guesses = {
        b"\xff\xd8\xff": "a JPEG image",
        b"\x89PNG": "a PNG image",
        b"GIF8": "a GIF image",
        b"%PDF": "a PDF document",
        b"ID3": "an MP3 audio file",
        b"OggS": "an Ogg file",
        b"RIFF": "a RIFF (WAV/AVI) file",
        b"PK\x03\x04": "a ZIP archive",
    }
    for magic, what in guesses.items():
        if head.startswith(magic):
            return f"The file looks like {what}, not a video (MP4, MOV, WebM or Matroska)."
    return "The file is not a video container this server accepts (MP4, MOV, WebM or Matroska)."


# --- box / element structure checks (cheap, before the demuxer) -------------


def mp4_top_level_boxes(path: str) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of each top-level ISO-BMFF box; NotAVideo when a
    box claims to run past the end of the file (a truncated upload)."""
    boxes = []
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset < file_size:
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                raise NotAVideo("The file is truncated: it ends inside a box header.", code="truncated_video")
            size, kind = struct.unpack(">I4s", header[:8])
            if size == 1:
                if len(header) < 16:
                    raise NotAVideo("The file is truncated.", code="truncated_video")
                size = struct.unpack(">Q", header[8:16])[0]
            elif size == 0:  # "extends to the end of the file"
                size = file_size - offset
            if size < 8 or offset + size > file_size:
                raise NotAVideo(
                    "The file is truncated or damaged: a box runs past its end.", code="truncated_video"
                )
            boxes.append((kind, offset, size))
            offset += size
    return boxes


def needs_faststart(boxes: list[tuple[bytes, int, int]]) -> bool:
    kinds = [kind for kind, _, _ in boxes]
    if b"moov" not in kinds:
        raise NotAVideo("The file has no 'moov' index: it is truncated or not finished.", code="truncated_video")
    return b"mdat" in kinds and kinds.index(b"mdat") < kinds.index(b"moov")


def check_matroska_size(path: str) -> None:
    """A Matroska/WebM Segment that declares more bytes than the file has was cut short."""
    with open(path, "rb") as f:
        head = f.read(4096)
    pos = 0
    for _ in range(2):  # the EBML header, then the Segment
        if pos >= len(head):
            return
        element_id, pos = _read_vint(head, pos, keep_marker=True)
        size, pos_after = _read_vint(head, pos, keep_marker=False)
        if element_id == 0x18538067:  # Segment
            unknown = size == (1 << (7 * (pos_after - pos))) - 1
            if not unknown and pos_after + size > os.path.getsize(path):
                raise NotAVideo("The file is truncated: its segment runs past the end.", code="truncated_video")
            return
        pos = pos_after + size


def _read_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int]:
    if pos >= len(data) or data[pos] == 0:
        raise NotAVideo("The Matroska header is damaged.", code="damaged_video")
    first = data[pos]
    length = 8 - first.bit_length() + 1
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, pos + length


# --- the child process's work -----------------------------------------------


def process(src: str, workdir: str) -> MediaInfo:
    """Validate, probe, fast-start and poster-frame one file (runs in the child)."""
    import av  # imported here: the server process never loads FFmpeg

    with open(src, "rb") as f:
        head = f.read(SNIFF_BYTES)
    container = sniff_container(head)
    if container is None:
        raise NotAVideo(describe_unknown(head))

    path = src
    if container in ("mp4", "mov"):
        if needs_faststart(mp4_top_level_boxes(src)):
            path = os.path.join(workdir, "faststart" + CONTAINERS[container][1])
            _remux_faststart(av, src, path, container)
    else:
        check_matroska_size(src)

    try:
        with av.open(path, metadata_errors="ignore") as media:
            info = _probe(media, container, path)
            thumbnail = os.path.join(workdir, "poster.jpg")
            media.seek(0)
            if not _write_poster(av, media, info.duration_seconds, thumbnail):
                raise NotAVideo("No frame of the video track could be decoded.", code="damaged_video")
    except av.FFmpegError as exc:
        raise NotAVideo(f"The video could not be read ({exc.strerror or 'damaged data'}).", code="damaged_video") from None
    return dataclasses.replace(info, thumbnail_path=thumbnail)


def _probe(media, container: str, path: str) -> MediaInfo:
    video = next((s for s in media.streams if s.type == "video" and not _is_cover_art(s)), None)
    if video is None:
        raise NotAVideo("The file has no video track (audio-only or empty).", code="no_video_track")
    audio = next((s for s in media.streams if s.type == "audio"), None)
    duration = None
    if media.duration:
        duration = media.duration / 1_000_000
    elif video.duration and video.time_base:
        duration = float(video.duration * video.time_base)
    content_type, extension = CONTAINERS[container]
    return MediaInfo(
        container=container,
        content_type=content_type,
        extension=extension,
        size_bytes=os.path.getsize(path),
        duration_seconds=round(duration, 3) if duration and duration > 0 else None,
        width=video.codec_context.width or None,
        height=video.codec_context.height or None,
        video_codec=video.codec_context.name,
        audio_codec=audio.codec_context.name if audio else None,
        path=path,
        thumbnail_path=None,
    )


def _is_cover_art(stream) -> bool:
    # An MP3/M4A's album cover is a one-frame "video" stream: not a video.
    return bool(stream.disposition & 1024)  # AV_DISPOSITION_ATTACHED_PIC


def _remux_faststart(av, src: str, dst: str, container: str) -> None:
    """Copy the streams (no re-encoding) into a file whose index comes first,
    so a browser can start playing before the download ends."""
    with av.open(src) as source, av.open(dst, "w", format=container, options={"movflags": "+faststart"}) as out:
        mapping = {}
        for stream in source.streams:
            if stream.type in ("video", "audio"):
                mapping[stream.index] = out.add_stream_from_template(stream)
        for packet in source.demux(*[source.streams[i] for i in mapping]):
            if packet.dts is None:  # the demuxer's end-of-stream flush packet
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)


def _write_poster(av, media, duration: float | None, dst: str) -> bool:
    """Encode one JPEG frame from early in the video (past a black first frame)."""
    video = next(s for s in media.streams if s.type == "video" and not _is_cover_art(s))
    target = min(2.0, duration / 3) if duration else 0.0
    if target > 0 and video.time_base:
        try:
            media.seek(int(target / video.time_base), stream=video, backward=True)
        except av.FFmpegError:
            media.seek(0)
    frame = None
    for frame in media.decode(video):
        if frame.time is None or frame.time >= target - 0.05:
            break
    if frame is None:
        return False
    width = min(frame.width, THUMBNAIL_MAX_WIDTH)
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qmin": "2", "qmax": "6"}
    image = frame.reformat(width=width, height=height, format="yuvj420p")
    packets = encoder.encode(image) + encoder.encode(None)
    with open(dst, "wb") as f:
        for packet in packets:
            f.write(bytes(packet))
    return os.path.getsize(dst) > 0


# --- the server's side ------------------------------------------------------


async def process_upload(src: Path, workdir: Path, timeout: float) -> MediaInfo:
    """Run `process` in a child process with a time limit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "minitube.media",
        "process",
        str(src),
        str(workdir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    try:
        result = json.loads(stdout)
    except ValueError:
        # The demuxer crashed (e.g. a signal) on this file: it is not a usable video.
        raise NotAVideo("The video could not be read (its data is damaged).", code="damaged_video") from None
    if not result["ok"]:
        raise NotAVideo(result["message"], code=result["code"])
    return MediaInfo(**result["media"])


def _main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "process":
        print("usage: python -m minitube.media process FILE WORKDIR", file=sys.stderr)
        return 2
    try:
        info = process(argv[1], argv[2])
    except NotAVideo as exc:
        print(json.dumps({"ok": False, "code": exc.code, "message": exc.message}))
        return 0
    print(json.dumps({"ok": True, "media": dataclasses.asdict(info)}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
