"""Inserting many rows from plain tuples, for billing runs.

A month of a large platform is hundreds of thousands of usage records, lines and
allocations. Django's bulk_create builds a model instance per row and an INSERT
with a parameter per value: most of a run went there. On PostgreSQL the rows are
streamed with COPY, their ids reserved from the table's sequence first (so
lines can point at records without reading them back); elsewhere (SQLite) they
go through bulk_create, which returns the ids.

Rows are tuples in the order of `fields` (attribute names: `invoice_id`, not
`invoice`); auto_now/auto_now_add and defaults are NOT applied: give every
column. Triggers and constraints apply as for any insert."""

import json
from collections.abc import Iterator, Sequence

from django.core.exceptions import EmptyResultSet
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models

BATCH = 2000
# Ids reserved per query: generate_series returns them in one round trip.
RESERVE = 50_000


def fetch_rows(queryset, chunk: int = BATCH) -> Iterator[tuple]:
    """The rows of a `values_list()` queryset, streamed (on PostgreSQL through a
    server-side cursor, without building a Django row per value)."""
    if connection.vendor != "postgresql":
        yield from queryset.iterator(chunk_size=chunk)
        return
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # e.g. `id__in=[]`
        return
    connection.ensure_connection()
    with connection.connection.cursor(name=f"billing_rows_{id(queryset)}") as cursor:
        cursor.itersize = chunk
        cursor.execute(sql, params)
        yield from cursor


def insert_rows(model, fields: Sequence[str], rows: list[tuple], *, ids: bool = True) -> list[int]:
    """Insert `rows` into `model`'s table; their ids, in the order of `rows` (with
    `ids=False`, PostgreSQL lets the table's default number them and nothing is
    returned: reserving ids from the sequence costs a round trip of a nextval each)."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        return _copy(model, fields, rows, ids)
    objects = model.objects.bulk_create(
        [model(**dict(zip(fields, row, strict=True))) for row in rows], batch_size=BATCH
    )
    return [obj.pk for obj in objects]


def _copy(model, fields: Sequence[str], rows: list[tuple], with_ids: bool) -> list[int]:
    meta = model._meta
    table = meta.db_table
    # get_field knows attnames too ("invoice_id").
    found = [meta.get_field(f) for f in fields]
    columns = [f.column for f in found]
    as_json = [i for i, f in enumerate(found) if isinstance(f, models.JSONField)]
    quote = connection.ops.quote_name
    ids: list[int] = []
    with connection.cursor() as cursor:
        if with_ids:
            for offset in range(0, len(rows), RESERVE):
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [table, meta.pk.column, min(RESERVE, len(rows) - offset)],
                )
                ids.extend(pk for (pk,) in cursor.fetchall())
            columns = [meta.pk.column, *columns]
            as_json = [i + 1 for i in as_json]
            rows = [(pk, *row) for pk, row in zip(ids, rows, strict=True)]
        statement = "COPY {} ({}) FROM STDIN".format(
            quote(table), ", ".join(quote(c) for c in columns)
        )
        # The psycopg cursor under Django's wrapper (COPY is not in the DB-API), its
        # errors turned into Django's as for any query.
        with connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
            for row in rows:
                if as_json:
                    row = list(row)
                    for i in as_json:
                        row[i] = json.dumps(row[i], cls=DjangoJSONEncoder)
                copy.write_row(row)
    return ids
