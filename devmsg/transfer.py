"""`devmsg store copy`: move a whole store between SQLite and PostgreSQL, ids, statuses,
failures and all, in batches. Stop the senders first: the copy is a snapshot per table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from peewee import Database, DateTimeField, Field, Model, SqliteDatabase

from devmsg.errors import InputError
from devmsg.models import MODELS, Blob, Worker
from devmsg.store import insert_sql
from devmsg.words import plural

BATCH = 1000
# A worker's row describes a process on this store: it is not copied to another.
COPIED = tuple(model for model in MODELS if model is not Worker)
Progress = Callable[[int, int], None]


def _columns(model: type[Model]) -> list[str]:
    return [field.column_name for field in model._meta.sorted_fields]


def _count(db: Database, table: str) -> int:
    return db.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def _converters(model: type[Model], target: Database) -> list[Callable[[Any], Any] | None]:
    """Per column: times parsed from SQLite's text, written as the target stores them."""
    to_sqlite = isinstance(target, SqliteDatabase)
    out: list[Callable[[Any], Any] | None] = []  # None: the value is kept as it is
    for field in model._meta.sorted_fields:
        if isinstance(field, DateTimeField):

            def convert(value: Any, field: DateTimeField = field) -> Any:
                if value is None:
                    return None
                if isinstance(value, str):
                    value = field.python_value(value)
                return value.isoformat(sep=" ") if to_sqlite else value

            out.append(convert)
        else:
            out.append(None)
    return out


def copy_store(
    source: Database,
    target: Database,
    target_name: str,
    replace: bool,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Copy every message, receiver and failure from `source` to `target` (both open and
    migrated). A non-empty target is refused unless `replace`, which empties it first."""
    tables = [model._meta.table_name for model in COPIED]
    existing = {table: _count(target, table) for table in tables}
    if any(existing.values()) and not replace:
        rows = ", ".join(plural(n, table.replace("_", " ")) for table, n in existing.items() if n)
        raise InputError(
            f"{target_name}: the target store is not empty ({rows}); --replace empties it first"
        )
    totals = {table: _count(source, table) for table in tables}
    total, done = sum(totals.values()), 0
    with target.atomic():
        for table in reversed(tables):
            target.execute_sql(f"DELETE FROM {table}")
    for model in COPIED:
        table, columns = model._meta.table_name, _columns(model)
        converters = _converters(model, target)
        insert = insert_sql(target, table, columns)
        with source.atomic():  # one snapshot of the table
            if isinstance(source, SqliteDatabase):
                cursor = source.cursor()
            else:
                cursor = source.connection().cursor(name=f"devmsg_copy_{table}")
            key = cast(Field, model._meta.primary_key).column_name
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}")
            batch = 8 if model is Blob else BATCH  # a blob may be megabytes
            while rows := cursor.fetchmany(batch):
                values = [
                    tuple(c(v) if c else v for c, v in zip(converters, row, strict=True))
                    for row in rows
                ]
                with target.atomic():
                    target.cursor().executemany(insert, values)
                done += len(rows)
                if progress is not None:
                    progress(done, total)
            cursor.close()
        if (
            not isinstance(target, SqliteDatabase)
            and cast(Field, model._meta.primary_key).name == "id"
        ):
            # Ids were copied: move the sequence past them.
            target.execute_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
    return totals
