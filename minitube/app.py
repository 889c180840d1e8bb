"""The application factory: middlewares, the route table, resources."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from . import auth, feed, health, openapi, pages, streaming, uploads, videos, viewers, views
from .db import db_ctx
from .keys import settings_key, storage_key
from .middlewares import access_log, cors_preflight, error_envelope, security_headers
from .ratelimit import limiter_ctx
from .redis_client import redis_ctx
from .settings import Settings
from .storage import Storage

# JSON bodies other than uploads are small; uploads are streamed and limited
# by MINITUBE_MAX_UPLOAD_BYTES in uploads.py instead.
CLIENT_MAX_SIZE = 64 * 1024


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/", pages.page, name="page"),
        web.get("/watch/{id:[0-9]+}", pages.watch_page, name="page-watch"),
        web.get("/upload", pages.page, name="page-upload"),
        web.get("/login", pages.page, name="page-login"),
        web.get("/register", pages.page, name="page-register"),
        web.post("/auth/register", auth.register, name="register"),
        web.post("/auth/login", auth.login, name="login"),
        web.get("/auth/me", auth.me, name="me"),
        web.post("/auth/logout-all", auth.logout_all, name="logout-all"),
        web.post("/videos/upload", uploads.upload, name="upload", expect_handler=uploads.expect_upload),
        web.get("/videos", feed.feed, name="feed"),
        web.get("/videos/{id:[0-9]+}", videos.get_video, name="video"),
        web.delete("/videos/{id:[0-9]+}", videos.delete_video, name="delete-video"),
        # GET also answers HEAD (aiohttp adds it with allow_head).
        web.get("/videos/{id:[0-9]+}/stream", streaming.stream, name="stream"),
        web.get("/videos/{id:[0-9]+}/thumbnail", videos.thumbnail, name="thumbnail"),
        web.get("/videos/{id:[0-9]+}/views", views.get_views, name="views"),
        web.post("/videos/{id:[0-9]+}/views", views.report_view, name="report-view"),
        web.get("/videos/{id:[0-9]+}/active-viewers", viewers.active_viewers, name="active-viewers"),
        web.get("/healthz", health.healthz, name="healthz"),
        web.get("/readyz", health.readyz, name="readyz"),
        web.get("/api/openapi.json", openapi.document, name="openapi"),
        web.get("/api/docs", openapi.docs, name="api-docs"),
        web.get(pages.STATIC_PREFIX + "{path:.+}", pages.static, name="static"),
    ]


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    storage = Storage(app[settings_key].storage_dir)
    storage.prepare()
    app[storage_key] = storage
    yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[access_log, error_envelope, cors_preflight], client_max_size=CLIENT_MAX_SIZE)
    app[settings_key] = settings
    app.add_routes(routes())
    pages.setup_templates(app)
    app.on_response_prepare.append(security_headers)
    # Order matters: cleanup runs in reverse, so presence (which still talks
    # to Redis as its sockets close) is torn down before the Redis client.
    app.cleanup_ctx.extend(
        [
            storage_ctx,
            db_ctx,
            redis_ctx,
            limiter_ctx,
            auth.hasher_ctx,
            streaming.media_cache_ctx,
            viewers.presence_ctx,
        ]
    )
    app.on_shutdown.append(viewers.close_sockets)
    return app
