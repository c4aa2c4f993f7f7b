"""`devmsg bounces ingest`: read bounce mail, match each report to the receiver it is about,
and record it (see devmsg.dsn for the reading, devmsg.store.bounces for the record).

Matching: by the VERP token in the address the bounce was sent to (`[bounces]
return_path`), else by the original's Message-ID in the returned headers. A bad token, or a
bounce that matches nothing, changes nothing: it is counted as unmatched, with the reason.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from devmsg import dsn, store
from devmsg.addresses import mailbox_key
from devmsg.config import Config
from devmsg.mailboxes import Letter

_COUNTED = {"bounced": "bounced", "delayed": "delayed", "complaint": "complaints",
            "duplicate": "duplicates"}  # fmt: skip
_SEVERITY = {"failed": 0, "complaint": 1, "delayed": 2}
COUNTS = ("read", "matched", "bounced", "delayed", "complaints", "duplicates", "suppressed",
          "unmatched", "rejected")  # fmt: skip


@dataclass
class IngestReport:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    messages: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**self.counts, "messages": self.messages}


class Ingest:
    def __init__(self, config: Config, user: str) -> None:
        self.config = config
        self.created_by = f"bounces ingest by {user}@{socket.gethostname()}"
        self._matcher = None
        if config.bounces.return_path:
            from devmsg.verp import Matcher

            self._matcher = Matcher(config.bounces.return_path, store.bounces.secret())

    def run(self, letters: Iterable[Letter], environ: dict[str, str] | None = None) -> IngestReport:
        report = IngestReport()
        for letter in letters:
            entry = self.one(letter, environ)
            report.counts["read"] += 1
            outcome = entry["outcome"]
            if outcome in ("unmatched", "rejected"):
                report.counts[outcome] += 1
            else:
                report.counts["matched"] += 1
                for effect in entry["effects"]:
                    if key := _COUNTED.get(effect):
                        report.counts[key] += 1
                report.counts["suppressed"] += entry.pop("suppressed", 0)
            report.messages.append(entry)
            letter.done()  # after its record is committed
        return report

    def one(self, letter: Letter, environ: dict[str, str] | None = None) -> dict:
        entry: dict = {"source": letter.label, "size": letter.size}
        if letter.raw is None:
            limit = self.config.bounces.max_size
            why = f"too big: {letter.size} bytes (bounces.max_size is {limit})"
            return {**entry, "outcome": "rejected", "why": why}
        parsed = dsn.parse(letter.raw, environ)
        entry["format"] = parsed.format or None
        if not parsed.reports:
            return {**entry, "outcome": "rejected", "why": parsed.why}
        receivers, why = self._match(parsed)
        if not receivers:
            return {**entry, "outcome": "unmatched", "why": why}
        effects, suppressed = [], 0
        for receiver_id, address in receivers.items():
            chosen = _report_for(address, parsed.reports)
            outcome = self._record(receiver_id, address, chosen, parsed.identity)
            effects.append(outcome.effect)
            suppressed += outcome.suppressed
        return {**entry, "outcome": "matched", "receiver_ids": list(receivers),
                "effects": effects, "suppressed": suppressed, "why": None}  # fmt: skip

    def _match(self, parsed: dsn.Parsed) -> tuple[dict[int, str], str]:
        forged = 0
        if self._matcher is not None:
            ids, forged = self._matcher.tokens(parsed.addressed_to)
            if ids:
                found = store.bounces.existing(ids)
                if found:
                    return found, ""
                return {}, f"its return path names receiver {ids[0]}, which is not in the store"
            if forged:
                return {}, "its return path's token is not valid (forged, or another store's)"
        found = store.bounces.by_message_id(parsed.message_ids)
        if len(found) > 1:
            # One message to many (a prebuilt message's receivers share its Message-ID):
            # only the receivers the report names.
            named = {_key(r.recipient) for r in parsed.reports if r.recipient}
            found = {rid: address for rid, address in found.items()
                     if mailbox_key(address) in named}  # fmt: skip
            if not found:
                return {}, ("its original's Message-ID is shared by several receivers, and "
                            "it names none of them")  # fmt: skip
        if found:
            return found, ""
        if not parsed.message_ids:
            return {}, "no return path token and no Message-ID of an original"
        return {}, f"no receiver sent with Message-ID {parsed.message_ids[0][:100]}"

    def _record(
        self, receiver_id: int, address: str, report: dsn.Report, identity: str
    ) -> store.bounces.Outcome:
        when = report.reported_at
        by = " (reported by " + (report.reported_by or "an unnamed server")
        by += f" at {self.config.minute(when)})" if when else ")"
        words = " ".join(w for w in (report.status, report.diagnostic) if w) or "no reason given"
        reason = f"bounced: {words}{by}"
        suppress = None
        if report.kind == "complaint":
            suppress = "complaint"
        elif report.mailbox_gone and self.config.suppress:
            suppress = f"bounced: {words}"
        return store.bounces.record(
            receiver_id, report.kind, identity, report.status, report.diagnostic,
            report.reported_by, when, reason, suppress, self.created_by,
        )  # fmt: skip


def _report_for(address: str, reports: list[dsn.Report]) -> dsn.Report:
    """The report about this address if one names it, else the gravest."""
    key = mailbox_key(address)
    for report in sorted(reports, key=lambda r: _SEVERITY[r.kind]):
        if report.recipient and _key(report.recipient) == key:
            return report
    return min(reports, key=lambda r: _SEVERITY[r.kind])


def _key(address: str) -> str:
    try:
        return mailbox_key(address.strip("<> "))
    except Exception:  # noqa: BLE001 (someone else's text: no match)
        return ""
