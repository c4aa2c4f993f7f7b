"""Mail that devmsg did not render: what the receivers of a message share (a prebuilt
message's bytes, an attachment) is stored once, in `blob`, keyed by its SHA-256, and each
receiver's content says where each shared piece goes back in (`content.parts`);
`message_blob` says which message uses which blob, so that purge can drop the unused ones.
`message.envelope_from` is the MAIL FROM a sendmail -f asked for."""

from peewee import (
    SQL,
    AutoField,
    BlobField,
    CharField,
    Database,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Message(Model):
        id = AutoField()

        class Meta:
            database = db
            table_name = "message"

    class Blob(Model):
        digest = CharField(primary_key=True)  # sha256 of the bytes, hex
        data = BlobField()  # zlib of the bytes
        size = IntegerField()  # the bytes' length

        class Meta:
            database = db
            table_name = "blob"

    class MessageBlob(Model):
        id = AutoField()
        message = ForeignKeyField(Message, on_delete="CASCADE", index=True)
        digest = CharField(index=True)

        class Meta:
            database = db
            table_name = "message_blob"

    db.create_tables([Blob, MessageBlob])
    migrator.migrate(
        migrator.add_column(
            "content", "parts", TextField(null=True, constraints=[SQL("DEFAULT NULL")])
        ),
        migrator.add_column(
            "message", "envelope_from", CharField(null=True, constraints=[SQL("DEFAULT NULL")])
        ),
    )
