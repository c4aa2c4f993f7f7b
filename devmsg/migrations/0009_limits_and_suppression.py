"""Shared rate limits (one row per limit, the hot row a grant locks, and one row per permit
still counting) and the suppression list (addresses not to be tried again)."""

from peewee import (
    AutoField,
    CharField,
    Database,
    DateTimeField,
    DoubleField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.migrate import SchemaMigrator


def up(migrator: SchemaMigrator, db: Database) -> None:
    class RateLimit(Model):
        id = AutoField()
        name = CharField(unique=True)  # "<scope> <window seconds>s"
        active = IntegerField(default=0)  # permits of this limit in rate_permit

        class Meta:
            database = db
            table_name = "rate_limit"

    class RatePermit(Model):
        limit_name = CharField()
        taken = DoubleField()  # database clock, seconds since the epoch
        until = DoubleField()  # counts until then
        span = DoubleField()  # the limit's window, in seconds
        holder = CharField(null=True)  # "<owner>#<n>" while its exchange is in flight

        class Meta:
            database = db
            table_name = "rate_permit"
            indexes = ((("limit_name", "until"), False),)

    class Suppression(Model):
        address_key = CharField(unique=True)  # local part as given, domain lower-cased
        address = CharField()
        reason = TextField()
        smtp_code = IntegerField(null=True)
        smtp_reply = TextField(null=True)
        receiver_id = IntegerField(null=True)  # the receiver whose refusal added it
        created_at = DateTimeField()
        created_by = CharField()

        class Meta:
            database = db
            table_name = "suppression"

    db.create_tables([RateLimit, RatePermit, Suppression])
    # Only permits in flight have a holder: a small partial index for the heartbeat.
    db.execute_sql(
        "CREATE INDEX rate_permit_holder ON rate_permit (holder) WHERE holder IS NOT NULL"
    )
