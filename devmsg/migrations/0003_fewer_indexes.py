"""Fewer indexes on receiver, so that writes and purges touch fewer b-trees: claims and
due receivers are found through the status index (rows of one status come in id order,
which list wants), a lease through claimed_by, and Message-IDs are random (unique without
an index)."""

from peewee import Database
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    migrator.migrate(
        migrator.drop_index("receiver", "receiver_status_next_attempt_at"),
        migrator.drop_index("receiver", "receiver_lease_until"),
        migrator.drop_index("receiver", "receiver_message_id_header"),
    )
