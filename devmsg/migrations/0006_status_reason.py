"""Operators' controls: a receiver can be `held`, `cancelled` or `expired`, and says who did
what, when and why in `status_reason`."""

from peewee import Database, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    migrator.migrate(migrator.add_column("receiver", "status_reason", TextField(null=True)))
