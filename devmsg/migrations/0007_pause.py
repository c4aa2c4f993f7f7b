"""A pause of all sending, stored in the store so that every process and host sharing it
sees it at once: one row while paused, none otherwise."""

from peewee import Database, DateTimeField, IntegerField, Model, TextField
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Pause(Model):
        id = IntegerField(primary_key=True)  # always 1
        paused_by = TextField()
        paused_at = DateTimeField()
        until = DateTimeField(null=True)
        reason = TextField(null=True)

        class Meta:
            database = db
            table_name = "pause"

    db.create_tables([Pause])
