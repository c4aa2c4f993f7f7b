"""Claims with a lease, interrupted attempts, backoff, the envelope address, and messages
whose receivers are still being stored."""

from peewee import CharField, Database, DateTimeField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    migrator.migrate(
        migrator.add_column("receiver", "envelope_to", CharField(null=True)),
        migrator.add_column("receiver", "claimed_by", CharField(null=True)),
        migrator.add_column("receiver", "lease_until", DateTimeField(null=True)),
        migrator.add_column("receiver", "attempt_started_at", DateTimeField(null=True)),
        migrator.add_column("receiver", "next_attempt_at", DateTimeField(null=True)),
        migrator.add_column("message", "state", CharField(default="stored")),
        migrator.add_column("message", "lease_until", DateTimeField(null=True)),
        migrator.add_index("receiver", ("claimed_by",)),
        migrator.add_index("receiver", ("lease_until",)),
        migrator.add_index("receiver", ("status", "next_attempt_at")),
        migrator.add_index("message", ("state",)),
    )
