"""Fewer indexes on receiver, so that writes and purges touch fewer b-trees: the status
index is the (status, next_attempt_at) index's prefix, a lease is found through
claimed_by, and Message-IDs are random (unique without an index)."""


def up(migrator, db):
    migrator.migrate(
        migrator.drop_index("receiver", "receiver_status"),
        migrator.drop_index("receiver", "receiver_lease_until"),
        migrator.drop_index("receiver", "receiver_message_id_header"),
    )
