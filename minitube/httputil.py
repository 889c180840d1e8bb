"""Small request/response helpers shared by the handlers."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from .errors import AppError, BadRequest, NotFound
from .keys import settings_key


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


BODY_TIMEOUT_SECONDS = 15.0
MAX_JSON_DEPTH = 8


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; anything else is 400 invalid_json.

    Only `application/json` is read: a form or text/plain body would let any
    web page post here from a visitor's browser without a CORS preflight."""
    if request.content_type != "application/json":
        raise BadRequest("Send the body as application/json.", code="invalid_json")
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            raw = await request.read()  # bounded by client_max_size (413 beyond it)
    except TimeoutError:
        raise AppError("The body did not arrive in time.", code="request_timeout", status=408) from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    _check_text(body, MAX_JSON_DEPTH)
    return body


def _check_text(value: Any, depth: int) -> None:
    """Refuse what PostgreSQL and UTF-8 cannot store: NUL characters and
    unpaired surrogates (JSON can spell both), and absurd nesting."""
    if depth < 0:
        raise BadRequest("The JSON is nested too deeply.", code="invalid_json")
    if isinstance(value, str):
        if "\x00" in value:
            raise BadRequest("Text may not contain NUL characters.", code="invalid_json")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("Text must be valid Unicode (no unpaired surrogates).", code="invalid_json") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, depth - 1)
            _check_text(item, depth - 1)
    elif isinstance(value, list):
        for item in value:
            _check_text(item, depth - 1)


def client_address(request: web.Request) -> str:
    """The client's IP address. Behind a PaaS router the peer is the router,
    so X-Forwarded-For is believed only when the operator says a trusted
    proxy sits in front (its last hop is the address the proxy saw)."""
    if request.app[settings_key].trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.remote or "unknown"


def int_param(request: web.Request, name: str) -> int:
    """A positive integer path parameter; anything else is a 404 (no such resource)."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFound()
    return int(raw)


async def small_file_response(
    request: web.Request, path: Path, etag: str, content_type: str, cache_control: str
) -> web.Response:
    """A small file sent whole with a strong ETag. Range headers are ignored
    (RFC 9110 §14.2 allows it), If-None-Match answers 304; FileNotFoundError
    propagates for the caller to turn into its own 404."""
    body = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
    headers = {"ETag": etag, "Cache-Control": cache_control}
    tags = [tag.strip().removeprefix("W/") for tag in request.headers.get("If-None-Match", "").split(",")]
    if etag in tags or "*" in tags:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, headers=headers)
