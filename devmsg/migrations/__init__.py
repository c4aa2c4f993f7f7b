"""Numbered, append-only schema changes, applied by `devmsg.db.open_database` on every open.

Each file defines ``up(migrator, db)`` with frozen copies of the models it needs, so a
migration keeps meaning what it meant when it was written. Never edit a released migration:
add the next number.
"""
