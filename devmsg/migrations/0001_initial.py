"""The first schema: message, receiver, failure."""

from peewee import (
    AutoField,
    BlobField,
    CharField,
    Database,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Message(Base):
        id = AutoField()
        created_at = DateTimeField(index=True)
        type = CharField(index=True)
        template = CharField(null=True)
        context = TextField()
        metadata = TextField()
        created_by = CharField()
        sender = CharField()

        class Meta:
            table_name = "message"

    class Receiver(Base):
        id = AutoField()
        message = ForeignKeyField(Message, on_delete="CASCADE", index=True)
        address = CharField()
        name = CharField(default="")
        language = CharField()
        subject = TextField()
        body_text = TextField()
        body_html = TextField()
        mime = BlobField()
        message_id_header = CharField(unique=True)
        status = CharField(index=True, default="not_sent")
        sent_count = IntegerField(default=0)
        failed_count = IntegerField(default=0)
        created_at = DateTimeField(index=True)
        sent_at = DateTimeField(null=True, index=True)
        sent_to = CharField(null=True)

        class Meta:
            table_name = "receiver"

    class Failure(Base):
        id = AutoField()
        receiver = ForeignKeyField(Receiver, on_delete="CASCADE", index=True)
        at = DateTimeField()
        error = TextField()
        traceback = TextField()

        class Meta:
            table_name = "failure"

    db.create_tables([Message, Receiver, Failure])
