"""Bounces read back: the key that signs each receiver's return path (VERP), one row per
delivery report that matched a receiver (its fingerprint makes a second ingest of the same
report change nothing), and an index to match a report by the original's Message-ID."""

from peewee import AutoField, CharField, Database, DateTimeField, ForeignKeyField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Secret(Model):
        name = CharField(primary_key=True)
        value = TextField()

        class Meta:
            database = db
            table_name = "secret"

    class Receiver(Model):
        id = AutoField()

        class Meta:
            database = db
            table_name = "receiver"

    class Bounce(Model):
        id = AutoField()
        fingerprint = CharField(unique=True)  # sha256 of (receiver, kind, the report)
        receiver = ForeignKeyField(Receiver, on_delete="CASCADE", index=True)
        kind = CharField()  # bounced, delayed, complaint
        status = CharField(null=True)  # the enhanced status code, 5.1.1
        diagnostic = TextField(null=True)
        reported_by = TextField(null=True)  # the reporting MTA
        reported_at = DateTimeField(null=True)  # when it says it happened
        at = DateTimeField(index=True)  # when it was read

        class Meta:
            database = db
            table_name = "bounce"

    db.create_tables([Secret, Bounce])
    migrator.migrate(
        migrator.add_index("receiver", ("message_id_header",), False),
    )
