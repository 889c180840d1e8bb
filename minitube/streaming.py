"""Serving media bytes per RFC 9110: ranges (§14), validators and
preconditions (§13), sendfile.

aiohttp's FileResponse answers several ranges, a malformed Range header and a
stale If-Range wrongly (see FACTS.md) and opens and stats the file in an
executor on every request, which dominates the tiny probes players send. Media
files here never change once stored, so this module keeps them open in a small
cache and answers from the open descriptor: os.pread for small ranges,
loop.sendfile for the rest.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import re
import secrets
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import AsyncIterator, BinaryIO

from aiohttp import web

from . import db
from .errors import NotFound, PreconditionFailed, RangeNotSatisfiable
from .httputil import int_param
from .keys import media_cache_key, storage_key
from .videos import extension_for
from .views import anonymous_id, anonymous_viewer, note_watch_start

SELECT_MEDIA = "SELECT storage_key, content_type FROM videos WHERE id = %(id)s"

# Ranges this small are read with pread and sent with the headers in one write.
SMALL_BODY = 64 * 1024
# More ranges than this in one request is an abuse pattern (RFC 9110 §14.2
# lets a server ignore such a Range header): the whole file is sent instead.
MAX_RANGES = 50
RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)", re.ASCII)
# Positions longer than this are past the end of any file; int() of thousands
# of digits would be slow and (past 4300 digits) refused.
MAX_DIGITS = 18
BEYOND_ANY_FILE = 10**MAX_DIGITS
CACHE_CONTROL = "public, max-age=0, must-revalidate"
NOTED_VIEWERS_CAP = 10_000


@dataclasses.dataclass(eq=False)
class MediaFile:
    video_id: int
    path: Path
    content_type: str
    size: int
    mtime: int
    file: BinaryIO
    users: int = 0
    evicted: bool = False
    noted_viewers: set[str] = dataclasses.field(default_factory=set)

    def __post_init__(self) -> None:
        # Computed once: the file never changes while it is open.
        # The stored name is unique, so name + size + mtime is a strong validator.
        self.etag = f'"{self.path.stem}-{self.size:x}-{self.mtime:x}"'
        self.last_modified = formatdate(self.mtime, usegmt=True)
        self._headers = {
            "Accept-Ranges": "bytes",
            "ETag": self.etag,
            "Last-Modified": self.last_modified,
            "Cache-Control": CACHE_CONTROL,
        }

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


class MediaCache:
    """Open media files by video id, least recently used evicted.

    A file is closed only when no response is still sending from it. A video
    deleted by another process is noticed by its link count dropping to 0."""

    def __init__(self, app: web.Application, capacity: int = 256) -> None:
        self._app = app
        self._capacity = capacity
        self._entries: collections.OrderedDict[int, MediaFile] = collections.OrderedDict()

    @contextlib.asynccontextmanager
    async def open(self, video_id: int) -> AsyncIterator[MediaFile]:
        entry = await self._get(video_id)
        entry.users += 1
        try:
            yield entry
        finally:
            entry.users -= 1
            if entry.evicted and entry.users == 0:
                entry.file.close()

    async def _get(self, video_id: int) -> MediaFile:
        entry = self._entries.get(video_id)
        if entry is not None:
            if os.fstat(entry.file.fileno()).st_nlink > 0:
                self._entries.move_to_end(video_id)
                return entry
            self.evict(video_id)
        async with db.cursor(self._app) as cur:
            row = await db.fetch_one(cur, SELECT_MEDIA, {"id": video_id})
        if row is None:
            raise NotFound("No video with that id.", code="video_not_found")
        path = self._app[storage_key].media_path(row["storage_key"], extension_for(row["content_type"]))
        try:
            file, stat = await asyncio.get_running_loop().run_in_executor(None, _open, path)
        except FileNotFoundError:
            raise NotFound("The video's media is gone.", code="video_not_found") from None
        entry = self._entries.get(video_id)  # another request may have won the race
        if entry is not None:
            file.close()
            return entry
        entry = MediaFile(video_id, path, row["content_type"], stat.st_size, int(stat.st_mtime), file)
        self._entries[video_id] = entry
        while len(self._entries) > self._capacity:
            self.evict(next(iter(self._entries)))
        return entry

    def evict(self, video_id: int) -> None:
        entry = self._entries.pop(video_id, None)
        if entry is not None:
            entry.evicted = True
            if entry.users == 0:
                entry.file.close()

    def close(self) -> None:
        for video_id in list(self._entries):
            self.evict(video_id)


def _open(path: Path) -> tuple[BinaryIO, os.stat_result]:
    file = open(path, "rb", buffering=0)
    return file, os.fstat(file.fileno())


async def media_cache_ctx(app: web.Application) -> AsyncIterator[None]:
    cache = MediaCache(app)
    app[media_cache_key] = cache
    yield
    cache.close()


# --- RFC 9110 ----------------------------------------------------------------


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ranges of a Range header as inclusive (first, last)
    pairs, sorted and coalesced; [] when none is satisfiable; None when the
    header is to be ignored (bad syntax, another unit, too many ranges)."""
    unit, sep, range_set = header.partition("=")
    if not sep or unit.lower() != "bytes":
        return None
    specs = [spec.strip() for spec in range_set.split(",")]
    specs = [spec for spec in specs if spec]  # the #rule allows empty list elements
    if not specs or len(specs) > MAX_RANGES:
        return None
    ranges = []
    for spec in specs:
        match = RANGE_SPEC.fullmatch(spec)
        if match is None or match.group(0) == "-":
            return None
        first, last = (_position(g) if g else None for g in match.groups())
        if first is not None:
            if last is not None and last < first:
                return None  # an invalid range-spec makes the whole header invalid
            if first < size:
                ranges.append((first, min(last, size - 1) if last is not None else size - 1))
        else:
            suffix = last
            if suffix > 0 and size > 0:
                ranges.append((max(size - suffix, 0), size - 1))
    return _coalesce(ranges)


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= MAX_DIGITS else BEYOND_ANY_FILE


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _etag_list(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _weak_match(header: str, etag: str) -> bool:
    tags = _etag_list(header)
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def _http_date(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError):
        return None


def _precondition(request: web.Request, media: MediaFile) -> int | None:
    """304 or 412 when a precondition says so (RFC 9110 §13.2.2 order), else None."""
    headers = request.headers
    if "If-Match" in headers:
        tags = _etag_list(headers["If-Match"])
        if "*" not in tags and media.etag not in tags:  # strong comparison
            return 412
    elif "If-Unmodified-Since" in headers:
        since = _http_date(headers["If-Unmodified-Since"])
        if since is not None and media.mtime > since:
            return 412
    if "If-None-Match" in headers:
        if _weak_match(headers["If-None-Match"], media.etag):
            return 304
    elif "If-Modified-Since" in headers:
        since = _http_date(headers["If-Modified-Since"])
        if since is not None and media.mtime <= since:
            return 304
    return None


def _if_range_allows(request: web.Request, media: MediaFile) -> bool:
    """§13.1.5: honour Range only if If-Range (when sent) names the current
    representation; an entity tag must match strongly, a date exactly."""
    value = request.headers.get("If-Range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == media.etag
    return _http_date(value) == media.mtime


# --- the handler ---------------------------------------------------------------


async def stream(request: web.Request) -> web.StreamResponse:
    video_id = int_param(request, "id")
    async with request.app[media_cache_key].open(video_id) as media:
        await _note_playback_start(request, media)
        return await _respond(request, media)


async def _note_playback_start(request: web.Request, media: MediaFile) -> None:
    """A player fetching from byte 0 starts the viewer's watch clock (see
    views.py); it never counts a view by itself. Only the first request of a
    viewer reaches Redis: players send many."""
    if request.method != "GET" or not request.headers.get("Range", "bytes=0-").startswith("bytes=0-"):
        return
    anon = anonymous_id(request)
    if anon is None:
        return
    viewer = anonymous_viewer(request, anon)
    if viewer in media.noted_viewers:
        return
    if len(media.noted_viewers) >= NOTED_VIEWERS_CAP:
        media.noted_viewers.clear()
    media.noted_viewers.add(viewer)
    await note_watch_start(request.app, media.video_id, viewer)


async def _respond(request: web.Request, media: MediaFile) -> web.StreamResponse:
    headers = media.headers()
    status = _precondition(request, media)
    if status == 304:
        return web.Response(status=304, headers={**headers, "Content-Type": media.content_type})
    if status == 412:
        raise PreconditionFailed(headers=headers)

    ranges = None
    if "Range" in request.headers and _if_range_allows(request, media):
        ranges = parse_range(request.headers["Range"], media.size)
    if ranges == []:
        raise RangeNotSatisfiable(
            f"The range is outside the file ({media.size} bytes).",
            headers={"Content-Range": f"bytes */{media.size}", **headers},
        )
    if ranges is None:
        return await _send(request, media, 200, headers, 0, media.size)
    if len(ranges) == 1:
        first, last = ranges[0]
        headers["Content-Range"] = f"bytes {first}-{last}/{media.size}"
        return await _send(request, media, 206, headers, first, last - first + 1)
    return await _send_multipart(request, media, headers, ranges)


async def _send(
    request: web.Request, media: MediaFile, status: int, headers: dict[str, str], offset: int, count: int
) -> web.StreamResponse:
    headers["Content-Type"] = media.content_type
    if request.method == "HEAD":
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = count
        return response
    if count <= SMALL_BODY:
        # Page-cache reads this small cost less than an executor hop.
        body = os.pread(media.file.fileno(), count, offset)
        return web.Response(status=status, headers=headers, body=body)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = count
    await response.prepare(request)
    await _sendfile(request, media, offset, count)
    await response.write_eof()
    return response


async def _send_multipart(
    request: web.Request, media: MediaFile, headers: dict[str, str], ranges: list[tuple[int, int]]
) -> web.StreamResponse:
    """206 multipart/byteranges (RFC 9110 §14.6), each part sent with sendfile."""
    boundary = secrets.token_hex(16)
    parts = [
        (
            f"\r\n--{boundary}\r\nContent-Type: {media.content_type}\r\n"
            f"Content-Range: bytes {first}-{last}/{media.size}\r\n\r\n"
        ).encode("ascii")
        for first, last in ranges
    ]
    closing = f"\r\n--{boundary}--\r\n".encode("ascii")
    length = sum(map(len, parts)) + sum(last - first + 1 for first, last in ranges) + len(closing)
    headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    response = web.StreamResponse(status=206, headers=headers)
    response.content_length = length
    if request.method == "HEAD":
        return response
    await response.prepare(request)
    for part, (first, last) in zip(parts, ranges):
        await response.write(part)
        await _sendfile(request, media, first, last - first + 1)
    await response.write(closing)
    await response.write_eof()
    return response


async def _sendfile(request: web.Request, media: MediaFile, offset: int, count: int) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away")
    # Falls back to read/write by itself where the OS or transport has no sendfile.
    await asyncio.get_running_loop().sendfile(transport, media.file, offset, count)
