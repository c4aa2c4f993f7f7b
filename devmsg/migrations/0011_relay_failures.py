"""Failures that say nothing about the receiver (the relay could not be reached, refused the
connection, the sender or the session) do not count toward `resend_limit`: `relay_failures`
counts them apart, for the backoff, and each failure row says whether it counted."""

from peewee import SQL, Database, IntegerField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    # A default in the schema too: the hot path inserts rows with plain SQL, naming only
    # the columns it sets.
    migrator.migrate(
        migrator.add_column(
            "receiver", "relay_failures", IntegerField(default=0, constraints=[SQL("DEFAULT 0")])
        ),
        migrator.add_column(
            "failure", "counts", IntegerField(default=1, constraints=[SQL("DEFAULT 1")])
        ),
    )
