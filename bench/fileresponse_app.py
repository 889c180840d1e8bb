"""The anchor: a bare aiohttp app serving one file with web.FileResponse, no
middlewares, no access log. `python -m bench.fileresponse_app FILE PORT`."""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web


def make_app(path: Path) -> web.Application:
    async def video(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.add_routes([web.get("/video", video), web.get("/healthz", healthz)])
    return app


def main(argv: list[str]) -> None:
    path, port = Path(argv[0]), int(argv[1])
    web.run_app(make_app(path), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main(sys.argv[1:])
