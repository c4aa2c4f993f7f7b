"""Operators' controls: a receiver can be `held`, `cancelled` or `expired`, and says who did
what, when and why in `status_reason`."""

from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column("receiver", "status_reason", TextField(null=True)))
