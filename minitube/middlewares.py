"""Middlewares: one access-log line per request, and the JSON error envelope
for every error from every route (unknown routes and 405 included)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time

from aiohttp import web

from . import db, pages, redis_client
from .errors import AppError
from .httputil import json_response
from .keys import request_id_key, settings_key

log = logging.getLogger("minitube.access")
error_log = logging.getLogger("minitube.errors")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media",
    416: "range_not_satisfiable",
    429: "rate_limited",
}
HTTP_ERROR_MESSAGES = {
    404: "There is nothing at this address.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
}
# Headers of aiohttp's own HTTP exceptions that still mean something in the envelope.
KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "Content-Range")


def error_response(
    status: int, code: str, message: str, *, fields: dict | None = None, headers: dict | None = None, extra: dict | None = None
) -> web.Response:
    error: dict = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return json_response({"error": error, **(extra or {})}, status=status, headers=headers)


@web.middleware
async def access_log(request: web.Request, handler) -> web.StreamResponse:
    supplied = request.headers.get("X-Request-ID", "")
    request_id = supplied if REQUEST_ID.match(supplied) else secrets.token_hex(8)
    request[request_id_key] = request_id
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except (ConnectionResetError, BrokenPipeError):
        status = 499  # nginx's "client closed request": not a server error
        raise
    finally:
        if log.isEnabledFor(logging.INFO):
            log.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "method": request.method,
                        "path": request.path,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "remote": request.remote,
                    }
                )
            )


@web.middleware
async def error_envelope(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as exc:
        response = error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404 and pages.wants_page(request):
            # A person typed or followed a wrong address: show the page's own
            # "not found" view, still with status 404.
            response = await pages.page(request)
            response.set_status(404)
            return response
        headers = {k: v for k, v in exc.headers.items() if k in KEPT_HEADERS}
        message = HTTP_ERROR_MESSAGES.get(exc.status) or exc.reason
        response = error_response(exc.status, HTTP_ERROR_CODES.get(exc.status, "http_error"), message, headers=headers)
    except (ConnectionResetError, BrokenPipeError):
        raise  # the client went away mid-answer: aiohttp drops the connection quietly
    except asyncio.TimeoutError:
        error_log.exception("timeout during %s %r", request.method, request.path)
        response = error_response(503, "timeout", "A backing service did not answer in time.")
    except db.UNAVAILABLE_ERRORS:
        error_log.exception("PostgreSQL unavailable during %s %r", request.method, request.path)
        response = error_response(503, "database_unavailable", "The database is unavailable; try again shortly.")
    except redis_client.UNAVAILABLE_ERRORS:
        error_log.exception("Redis unavailable during %s %r", request.method, request.path)
        response = error_response(503, "redis_unavailable", "A backing service is unavailable; try again shortly.")
    except Exception:
        error_log.exception("unhandled error in %s %r", request.method, request.path)
        response = error_response(500, "internal_error", "Something went wrong on our side.")
    if request.body_exists and not request.content.at_eof():
        # Do not read the rest of a refused body (a 413 or an early 415
        # upload): close the connection once the answer is sent.
        response.force_close()
    return response


CORS_ALLOW_HEADERS = (
    "Authorization, Content-Type, Range, If-Range, If-Match, If-None-Match, If-Modified-Since, "
    "If-Unmodified-Since, X-Request-ID"
)
CORS_EXPOSE_HEADERS = (
    "Content-Range, Content-Length, Accept-Ranges, ETag, Last-Modified, Location, Retry-After, X-Request-ID"
)


def _cors_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    return origin if origin and origin in request.app[settings_key].cors_origins else None


@web.middleware
async def cors_preflight(request: web.Request, handler) -> web.StreamResponse:
    """Answer CORS preflights, for the configured origins only; anyone else's
    OPTIONS falls through to the router (405)."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers and _cors_origin(request):
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": "GET, HEAD, POST, DELETE",
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: headers every answer carries."""
    headers = response.headers
    if request_id_key in request:
        headers.setdefault("X-Request-ID", request[request_id_key])
    origin = _cors_origin(request)
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        headers.add("Vary", "Origin")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if response.content_type == "text/html":
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; "
            "form-action 'self'; frame-ancestors 'none'",
        )
