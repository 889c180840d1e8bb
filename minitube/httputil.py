"""Small request/response helpers shared by the handlers."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .errors import BadRequest, NotFound
from .keys import settings_key


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; anything else is 400 invalid_json."""
    raw = await request.read()  # bounded by client_max_size (413 beyond it)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    return body


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
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound()
    return int(raw)
