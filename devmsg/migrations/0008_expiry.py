"""Scheduled and expiring mail: `expires_at` (send --expires), and `age_from`, the moment a
receiver starts ageing toward `max_age` (its --at time; moved on by the time it was held,
`held_at`)."""

from peewee import Database, DateTimeField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    migrator.migrate(
        migrator.add_column("receiver", "expires_at", DateTimeField(null=True)),
        migrator.add_column("receiver", "age_from", DateTimeField(null=True)),
        migrator.add_column("receiver", "held_at", DateTimeField(null=True)),
    )
