"""Fast inserts of prepared rows: COPY on PostgreSQL, executemany on SQLite.

Used by kinds whose files run to millions of rows (residents, nucleic-acid results) and by the
benchmarks, which load the same prepared rows "raw" to measure what the import costs on top.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order; bytes for binary columns, dates as date objects)
    into ``table`` on the default connection, inside the caller's transaction. Returns the count."""
    qn = connection.ops.quote_name
    cols = ", ".join(qn(c) for c in columns)
    n = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.connection  # the psycopg 3 connection under Django's wrapper
            with raw.cursor() as pg, pg.copy(f"COPY {qn(table)} ({cols}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
                    n += 1
        else:
            rows = list(rows)
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {qn(table)} ({cols}) VALUES ({placeholders})", rows)
            n = len(rows)
    return n


def select_in(sql: str, values) -> list[tuple]:
    """Run ``sql`` whose ``{}`` is replaced by one placeholder per value (for ``x IN ({})``); return the rows.
    The hot look-ups of big imports use this: building a 5,000-value IN through the ORM costs more
    than running it."""
    values = list(values)
    if not values:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql.format(", ".join(["%s"] * len(values))), values)
        return cursor.fetchall()
