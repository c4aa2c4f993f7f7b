"""The suppression list: addresses not to be tried again (a mailbox that does not exist, or
one a person added). Receivers to a listed address are stored `suppressed`, never tried;
a resend by hand still sends, and its success takes the address off the list.

Addresses compare exactly on the local part and in any case on the domain (`mailbox_key`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from peewee import chunked

from devmsg.addresses import mailbox_key
from devmsg.models import DELIVERABLE, Receiver, Suppression, database
from devmsg.store.base import INSERT_CHUNK, announce, from_db, utcnow, writing


def _entry(row: Suppression) -> dict:
    return {
        "address": row.address,
        "reason": row.reason,
        "smtp_code": row.smtp_code,
        "smtp_reply": row.smtp_reply,
        "receiver_id": row.receiver_id,
        "created_at": from_db(row.created_at),
        "created_by": row.created_by,
    }


def reason_text(entry: dict, minute: Callable[[dt.datetime], str]) -> str:
    """A suppressed receiver's status_reason: which entry, since when, why."""
    return (
        f"suppressed: {entry['address']} is on the suppression list since "
        f"{minute(entry['created_at'])}: {entry['reason']}"
    )


def suppressed(addresses: Iterable[str]) -> dict[str, dict]:
    """mailbox_key -> entry, for those of these addresses on the list. On every send: the
    look-up is plain SQL (building a peewee query cost more than the query), and only a hit
    reads its entry."""
    keys = sorted({mailbox_key(address) for address in addresses})
    db = database.obj
    hits: list[str] = []
    for start in range(0, len(keys), INSERT_CHUNK):  # (peewee's chunked pads, then pops)
        batch = keys[start : start + INSERT_CHUNK]
        marks = ", ".join([db.param] * len(batch))
        sql = f"SELECT address_key FROM suppression WHERE address_key IN ({marks})"
        hits += [key for (key,) in db.execute_sql(sql, batch).fetchall()]
    if not hits:
        return {}
    query = Suppression.select().where(Suppression.address_key.in_(hits))
    return {row.address_key: _entry(row) for row in query}


def list_suppressions() -> list[dict]:
    newest = (Suppression.created_at.desc(), Suppression.id.desc())
    return [_entry(row) for row in Suppression.select().order_by(*newest)]


def add_suppression(
    address: str,
    reason: str,
    created_by: str,
    smtp_code: int | None = None,
    smtp_reply: str | None = None,
    receiver_id: int | None = None,
) -> bool:
    """Put an address on the list; False if it already was (its entry is kept)."""
    with writing():
        return bool(
            Suppression.insert(
                address_key=mailbox_key(address), address=address, reason=reason,
                smtp_code=smtp_code, smtp_reply=smtp_reply, receiver_id=receiver_id,
                created_at=utcnow(), created_by=created_by,
            ).on_conflict_ignore().execute()
        )  # fmt: skip


class ComplaintError(Exception):
    """Addresses listed by a complaint: the person asked not to get this mail."""


def remove_suppressions(
    addresses: list[str], requeue: bool, reason: str, force: bool = False
) -> tuple[int, int]:
    """Take these addresses off the list (all or none: each must be on it; LookupError
    names those that are not; ComplaintError those listed by a complaint, unless `force`).
    With `requeue`, their `suppressed` receivers become not_sent, due at once. (addresses
    removed, receivers requeued)."""
    keys = {mailbox_key(address): address for address in addresses}
    with writing():
        listed = {row.address_key: row.reason for row in Suppression.select(
            Suppression.address_key, Suppression.reason
        ).where(Suppression.address_key.in_(list(keys)))}  # fmt: skip
        missing = [address for key, address in keys.items() if key not in listed]
        if missing:
            raise LookupError(", ".join(missing))
        complained = [keys[key] for key, why in listed.items() if why == "complaint"]
        if complained and not force:
            raise ComplaintError(", ".join(complained))
        Suppression.delete().where(Suppression.address_key.in_(list(keys))).execute()
        requeued = 0
        if requeue:
            rows = Receiver.select(Receiver.id, Receiver.address).where(
                Receiver.status == "suppressed"
            )
            ids = [r.id for r in rows.iterator() if mailbox_key(r.address) in keys]
            for batch in chunked(ids, INSERT_CHUNK):
                requeued += (
                    Receiver.update(
                        status="not_sent", status_reason=reason, next_attempt_at=utcnow()
                    )
                    .where(Receiver.id.in_(batch) & (Receiver.status == "suppressed"))
                    .execute()
                )
            if requeued:
                announce()
    return len(keys), requeued


def unsuppress(address: str) -> None:
    """A resend by hand reached this address: it is not dead after all."""
    with writing():
        Suppression.delete().where(Suppression.address_key == mailbox_key(address)).execute()


def suppress_claimed(
    owner: str, rows: Iterable[Any], minute: Callable[[dt.datetime], str]
) -> set[int]:
    """Of these receivers a run has claimed, those now on the list become `suppressed`
    (not tried, their claim given up). Their ids."""
    listed = suppressed(row.address for row in rows)
    if not listed:
        return set()
    hit = {row.id: listed[mailbox_key(row.address)] for row in rows
           if mailbox_key(row.address) in listed}  # fmt: skip
    with writing():
        for rid, entry in hit.items():
            Receiver.update(
                status="suppressed", status_reason=reason_text(entry, minute),
                next_attempt_at=None, claimed_by=None, lease_until=None,
                attempt_started_at=None,
            ).where(
                (Receiver.id == rid) & (Receiver.claimed_by == owner)
                & Receiver.status.in_(DELIVERABLE)
            ).execute()  # fmt: skip
    return set(hit)
