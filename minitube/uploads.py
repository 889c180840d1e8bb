"""Uploads: multipart streamed to disk, checked by its bytes, probed, stored.

The body is never held in memory: `read_chunk` hands over at most a chunk at
a time and each chunk is written to the upload's private workspace off the
event loop. The byte limit is enforced here (client_max_size does not cover
streamed parts); past it, and as soon as the first bytes show the file is not
a video, the server answers without reading the rest and closes the
connection."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from . import db
from .auth import AuthUser, clean_text, required_user
from .errors import AppError, BadRequest, Invalid, NotAVideo, TooLarge
from .httputil import client_address, json_response
from .keys import limiter_key, settings_key, storage_key
from .middlewares import error_response
from .media import SNIFF_BYTES, describe_unknown, process_upload, sniff_container
from .settings import Settings
from .videos import create_video, fetch_video, video_json

CHUNK = 1024 * 1024
MAX_TEXT_FIELD = 64 * 1024
MAX_FORM_TEXT = 2 * MAX_TEXT_FIELD
# Room for the multipart boundaries and the small text fields.
ENVELOPE_ALLOWANCE = MAX_FORM_TEXT + 64 * 1024
# A client that sends nothing for this long has gone or is stalling on purpose.
STALL_SECONDS = 60.0
# title, description, file, and a few a client may add; parsing many tiny
# parts is CPU work done without yielding to other requests.
MAX_PARTS = 8


@dataclasses.dataclass
class UploadForm:
    fields: dict[str, str] = dataclasses.field(default_factory=dict)
    file_path: Path | None = None
    filename: str | None = None
    # Bytes every part other than the file may still use, all together.
    text_budget: int = MAX_FORM_TEXT


async def read_form(request: web.Request, workspace: Path, settings: Settings) -> UploadForm:
    if not request.content_type.startswith("multipart/form-data"):
        raise BadRequest("Send the video as multipart/form-data.", code="invalid_multipart")
    form = UploadForm()
    # Everything read counts: part bodies, part headers, a preamble, empty parts.
    budget = settings.max_upload_bytes + ENVELOPE_ALLOWANCE
    try:
        reader = await _stalling(request.multipart())
        for _ in range(MAX_PARTS + 1):
            part = await _stalling(reader.next())
            _check_budget(request, budget)
            if part is None:
                return form
            if not isinstance(part, BodyPartReader):
                raise BadRequest("Nested multipart bodies are not accepted.", code="invalid_multipart")
            if part.name == "file":
                if form.file_path is not None:
                    raise BadRequest("Send one file per upload.", code="invalid_multipart")
                # Some clients (aiohttp's among them) percent-encode the name.
                form.filename = clean_text(unquote(part.filename or ""))[:255] or None
                form.file_path = workspace / "upload.bin"
                await _receive_file(part, form.file_path, settings.max_upload_bytes)
            else:
                # Unknown fields are read and dropped, within the same budget.
                text = await _read_text(part, form)
                if part.name in ("title", "description"):
                    form.fields[part.name] = text
        raise BadRequest(f"An upload has at most {MAX_PARTS} parts.", code="invalid_multipart")
    except (ValueError, AssertionError, UnicodeDecodeError, LookupError, HttpProcessingError) as exc:
        # aiohttp's multipart reader reports a malformed body with these.
        raise BadRequest(f"The multipart body is malformed ({exc.__class__.__name__}).", code="invalid_multipart") from None


def _check_budget(request: web.Request, budget: int) -> None:
    # total_bytes counts what reached the body stream, after any Content-Encoding.
    if request.content.total_bytes > budget:
        raise TooLarge("The upload is larger than the limit.", code="file_too_large")


async def _stalling(awaitable):
    """Await a step of the multipart reader; a client that stops sending is cut off."""
    try:
        async with asyncio.timeout(STALL_SECONDS):
            return await awaitable
    except TimeoutError:
        raise AppError("The upload stalled.", code="request_timeout", status=408) from None


async def _read_text(part: BodyPartReader, form: UploadForm) -> str:
    data = bytearray()
    while chunk := await _stalling(part.read_chunk(8192)):
        data += chunk
        form.text_budget -= len(chunk)
        if len(data) > MAX_TEXT_FIELD or form.text_budget < 0:
            raise TooLarge(f"The {part.name or 'unnamed'} field is too long.", code="field_too_large")
    return bytes(data).decode(part.get_charset(default="utf-8"))


async def _receive_file(part: BodyPartReader, path: Path, limit: int) -> None:
    loop = asyncio.get_running_loop()
    received = 0
    head = b""
    with open(path, "wb") as out:
        while chunk := await _stalling(part.read_chunk(CHUNK)):
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"The file is larger than the limit of {limit} bytes.", code="file_too_large")
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES and sniff_container(head) is None:
                    raise NotAVideo(describe_unknown(head))
            await loop.run_in_executor(None, out.write, chunk)
    if sniff_container(head) is None:
        raise NotAVideo(describe_unknown(head))


def validate_fields(form: UploadForm, settings: Settings) -> tuple[str, str]:
    errors = {}
    if form.file_path is None:
        errors["file"] = "is required (a video file in the 'file' field)"
    title = clean_text(form.fields.get("title", ""))
    if not title:
        errors["title"] = "is required"
    elif len(title) > settings.max_title_chars:
        errors["title"] = f"must be at most {settings.max_title_chars} characters"
    description = clean_text(form.fields.get("description", ""), multiline=True)
    if len(description) > settings.max_description_chars:
        errors["description"] = f"must be at most {settings.max_description_chars} characters"
    if errors:
        raise Invalid(errors)
    return title, description


async def store_upload(request: web.Request, user: AuthUser) -> int:
    app = request.app
    settings = app[settings_key]
    async with app[storage_key].workspace() as workspace:
        form = await read_form(request, workspace, settings)
        title, description = validate_fields(form, settings)
        assert form.file_path is not None
        info = await process_upload(form.file_path, workspace, settings.media_probe_timeout)
        return await create_video(app, user, title, description, info, form.filename)


def _refuse_oversized(request: web.Request) -> None:
    limit = request.app[settings_key].max_upload_bytes
    if request.content_length is not None and request.content_length > limit + ENVELOPE_ALLOWANCE:
        raise TooLarge(f"The upload is larger than the limit of {limit} bytes.", code="file_too_large")


async def expect_upload(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` (curl sends it for large files): invite the body
    only for an upload that can be accepted, so a client that is not signed
    in, or whose file is over the limit, is told before it sends a byte."""
    if request.headers.get("Expect", "").lower() != "100-continue":
        return None  # the only expectation HTTP/1.1 defines; anything else is ignored
    # aiohttp calls this before the middlewares, so it answers in the
    # envelope itself.
    try:
        await required_user(request)
        _refuse_oversized(request)
    except AppError as exc:
        response = error_response(exc.status, exc.code, exc.message, headers=exc.headers)
    except db.UNAVAILABLE_ERRORS:
        response = error_response(503, "database_unavailable", "The database is unavailable; try again shortly.")
    else:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the 100 is not part of the answer's size
        return None
    response.force_close()
    return response


async def upload(request: web.Request) -> web.Response:
    app = request.app
    settings = app[settings_key]
    user = await required_user(request)
    _refuse_oversized(request)
    await app[limiter_key].limit(
        f"rl:upload:{client_address(request)}",
        allowed=settings.uploads_per_address,
        window=settings.rate_window_seconds,
        what="uploads from this address",
    )
    video_id = await store_upload(request, user)
    row = await fetch_video(app, video_id)
    return json_response(
        {"video": video_json(row, 0)}, status=201, headers={"Location": f"/videos/{video_id}"}
    )
