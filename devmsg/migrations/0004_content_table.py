"""The large, never-changing part of a receiver (the bodies and the email's bytes) moves to
its own table, so that every status change rewrites a small row, and scans stay small."""

from peewee import AutoField, BlobField, Database, ForeignKeyField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Receiver(Base):
        id = AutoField()

        class Meta:
            table_name = "receiver"

    class Content(Base):
        receiver = ForeignKeyField(Receiver, primary_key=True, on_delete="CASCADE")
        body_text = TextField()
        body_html = TextField()
        mime = BlobField()

        class Meta:
            table_name = "content"

    db.create_tables([Content])
    db.execute_sql(
        "INSERT INTO content (receiver_id, body_text, body_html, mime) "
        "SELECT id, body_text, body_html, mime FROM receiver"
    )
    migrator.migrate(
        migrator.drop_column("receiver", "body_text"),
        migrator.drop_column("receiver", "body_html"),
        migrator.drop_column("receiver", "mime"),
    )
