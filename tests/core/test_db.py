"""PostgreSQL date-times are read by psycopg's C loader (core/db.py), and read
exactly as Django's own loader would: aware, in UTC."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from core.db import UTCTimestamptzLoader

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's loaders"),
]


def read(sql: str):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_the_connection_reads_timestamptz_with_the_c_loader():
    read("SELECT 1")
    psycopg_connection = connection.connection
    oid = psycopg_connection.adapters.types["timestamptz"].oid
    loader = psycopg_connection.adapters.get_loader(oid, 0)  # text format, as Django reads

    assert loader is UTCTimestamptzLoader
    # Django keeps it: the cursor's loader is the connection's.
    with connection.cursor() as cursor:
        assert cursor.cursor.adapters.get_loader(oid, 0) is UTCTimestamptzLoader


def test_instants_come_back_aware_in_utc_whatever_their_written_offset():
    moment = read("SELECT '2026-10-25 02:30:00+02'::timestamptz")

    assert moment == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert moment.tzinfo is UTC


def test_microseconds_and_far_dates_survive():
    assert read("SELECT '2026-03-29 01:59:59.999999+00'::timestamptz") == datetime(
        2026, 3, 29, 1, 59, 59, 999999, tzinfo=UTC
    )
    assert read("SELECT '0001-01-01 00:00:00+00'::timestamptz") == datetime(1, 1, 1, tzinfo=UTC)
    assert read("SELECT NULL::timestamptz") is None
