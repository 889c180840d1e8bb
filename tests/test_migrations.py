"""The migration stairway: each migration applies, rolls back and applies again."""

import psycopg2
import pytest
from yoyo import get_backend, read_migrations

from minitube.migrate import MIGRATIONS_DIR


@pytest.fixture
def scratch_database(services):
    if services.postgres is None:
        pytest.skip("needs the embedded PostgreSQL to create a scratch database")
    services.postgres.ensure_database("minitube_stairway")
    url = services.postgres.url("minitube_stairway")
    yield url
    conn = psycopg2.connect(services.postgres.url("postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE minitube_stairway WITH (FORCE)")
    conn.close()


def tables(url):
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '\\_yoyo%%' AND tablename <> 'yoyo_lock' ORDER BY 1")
        names = [row[0] for row in cur.fetchall()]
    conn.close()
    return names


def test_stairway(scratch_database):
    backend = get_backend(scratch_database)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    assert len(migrations) >= 1
    with backend.lock():
        for migration in migrations:
            backend.apply_one(migration)
            after_apply = tables(scratch_database)
            backend.rollback_one(migration)
            backend.apply_one(migration)
            assert tables(scratch_database) == after_apply
        for migration in reversed(migrations):
            backend.rollback_one(migration)
    assert tables(scratch_database) == []
