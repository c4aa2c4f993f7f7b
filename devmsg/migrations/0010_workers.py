"""`devmsg worker` records itself: one row per running worker, refreshed with its lease
heartbeat, so that `stats` can list the live ones and show those that went away."""

from peewee import AutoField, CharField, Database, DateTimeField, IntegerField, Model
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class Worker(Model):
        id = AutoField()
        name = CharField(unique=True)  # the run's owner id: host:pid:random
        host = CharField()
        pid = IntegerField()
        type = CharField(null=True)  # --type: only receivers of this type
        started_at = DateTimeField()
        last_seen_at = DateTimeField()  # on the lease clock
        sent = IntegerField(default=0)
        failed = IntegerField(default=0)

        class Meta:
            database = db
            table_name = "worker"

    db.create_tables([Worker])
