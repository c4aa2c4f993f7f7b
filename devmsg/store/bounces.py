"""Bounces read back: the key that signs return paths, matching a report to its receiver,
and recording what the report says, once (a report's fingerprint is unique: reading the
same bounce twice changes nothing the second time)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from peewee import IntegrityError

from devmsg.addresses import mailbox_key
from devmsg.models import Bounce, Failure, Receiver, Secret, Suppression
from devmsg.store.base import from_db, to_db, utcnow, writing

VERP_KEY = "verp"


def secret(name: str = VERP_KEY) -> bytes:
    """The store's key of this name, made on first use: every process and host that shares
    the store signs and checks with the same one."""
    row = Secret.get_or_none(Secret.name == name)
    if row is None:
        with writing():
            Secret.insert(name=name, value=secrets.token_hex(32)).on_conflict_ignore().execute()
        row = Secret.get(Secret.name == name)
    return bytes.fromhex(row.value)


def existing(receiver_ids: list[int]) -> dict[int, str]:
    """Of these receiver ids, those in the store: id -> address."""
    query = Receiver.select(Receiver.id, Receiver.address).where(Receiver.id.in_(receiver_ids))
    return {row.id: row.address for row in query}


def by_message_id(message_ids: list[str]) -> dict[int, str]:
    """The receivers whose email carried one of these Message-IDs: id -> address."""
    if not message_ids:
        return {}
    query = Receiver.select(Receiver.id, Receiver.address).where(
        Receiver.message_id_header.in_(message_ids[:20])
    )
    return {row.id: row.address for row in query}


@dataclass(frozen=True)
class Outcome:
    effect: str  # bounced, failed (a report of a receiver no longer sent), delayed, ...
    suppressed: bool = False


def record(
    receiver_id: int,
    kind: str,
    identity: str,
    status: str | None,
    diagnostic: str | None,
    reported_by: str | None,
    reported_at: dt.datetime | None,
    reason: str,
    suppress: str | None,
    created_by: str,
) -> Outcome:
    """One report about one receiver, in one transaction: the bounce row (unique by
    fingerprint), and its effect. `failed`: a `sent` receiver becomes `bounced`, with
    `reason` as its status_reason and the bounce in its history as a failure. `complaint`
    and `suppress` (a reason) put the address on the suppression list; a complaint
    replaces an entry made for another reason."""
    fingerprint = hashlib.sha256(f"{receiver_id}\0{kind}\0{identity}".encode()).hexdigest()
    now = utcnow()
    with writing():
        address = Receiver.select(Receiver.address).where(Receiver.id == receiver_id).scalar()
        if address is None:
            return Outcome("vanished")
        try:
            Bounce.insert(
                fingerprint=fingerprint, receiver=receiver_id, kind=kind, status=status,
                diagnostic=diagnostic, reported_by=reported_by,
                reported_at=None if reported_at is None else to_db(reported_at), at=now,
            ).execute()  # fmt: skip
        except IntegrityError:
            return Outcome("duplicate")
        changed = False
        if kind == "failed":  # in the history (and counted) whatever the status is now
            Receiver.update(failed_count=Receiver.failed_count + 1).where(
                Receiver.id == receiver_id
            ).execute()
            changed = bool(
                Receiver.update(status="bounced", status_reason=reason)
                .where((Receiver.id == receiver_id) & (Receiver.status == "sent"))
                .execute()
            )
            text = _report_text(kind, status, diagnostic, reported_by, reported_at)
            Failure.insert(receiver=receiver_id, at=now, error=reason, traceback=text).execute()
        listed = False
        if suppress:
            key = mailbox_key(address)
            entry = {"address_key": key, "address": address, "reason": suppress,
                     "smtp_code": None, "smtp_reply": diagnostic, "receiver_id": receiver_id,
                     "created_at": now, "created_by": created_by}  # fmt: skip
            insert = Suppression.insert(**entry)
            if kind == "complaint":
                insert = insert.on_conflict(
                    conflict_target=[Suppression.address_key],
                    update={Suppression.reason: suppress, Suppression.smtp_reply: diagnostic,
                            Suppression.receiver_id: receiver_id},
                )  # fmt: skip
            else:
                insert = insert.on_conflict_ignore()
            listed = bool(insert.execute())
    # "bounced" only when the receiver became bounced: one resent since keeps its status
    return Outcome("bounced" if changed else kind, listed)


def _report_text(
    kind: str, status: str | None, diagnostic: str | None, reported_by: str | None,
    reported_at: dt.datetime | None,
) -> str:  # fmt: skip
    """The report's fields, where a failure keeps its traceback."""
    lines = [f"Action: {kind}", f"Status: {status or '-'}", f"Diagnostic: {diagnostic or '-'}",
             f"Reported by: {reported_by or '-'}",
             f"Reported at: {reported_at.isoformat() if reported_at else '-'}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def reports(receiver_id: int) -> list[dict]:
    """A receiver's delivery reports, oldest first (for `show`)."""
    query = Bounce.select().where(Bounce.receiver == receiver_id).order_by(Bounce.id)
    return [
        {
            "kind": row.kind,
            "status": row.status,
            "diagnostic": row.diagnostic,
            "reported_by": row.reported_by,
            "reported_at": from_db(row.reported_at),
            "at": from_db(row.at),
        }  # fmt: skip
        for row in query
    ]


def bounced_since(since: dt.datetime) -> int:
    """Permanent bounces read since then."""
    return Bounce.select().where((Bounce.kind == "failed") & (Bounce.at >= since)).count()
