"""Every query the use cases need, by concern: `base` (transactions, time, the lease
clock), `create` (storing a message), `claims` (claims, leases, recovery, what is due),
`outcomes` (recording attempts), `queries` (list and show), `admin` (purge),
`ratelimit` (shared rate-limit permits), `suppression` (the suppression list), `bounces`
(delivery reports read back). Each write is
one short transaction; none is ever held across SMTP I/O. Times go in as aware datetimes
and are stored as naive UTC."""

from devmsg.models import database
from devmsg.store import bounces
from devmsg.store.admin import purge
from devmsg.store.base import (
    INSERT_CHUNK,
    from_db,
    insert_sql,
    lease_now,
    to_db,
    utcnow,
    writing,
)
from devmsg.store.claims import (
    INTERRUPTED,
    Outgoing,
    Policy,
    claim_due,
    claim_ids,
    count_due,
    defer,
    existing_ids,
    next_due_at,
    next_lease_end,
    outgoing,
    recover_expired,
    release_claims,
    renew,
)
from devmsg.store.control import (
    ControlReport,
    Selection,
    change,
    pause,
    paused,
    reason_text,
    resume,
)
from devmsg.store.create import (
    add_receivers,
    begin_message,
    discard_message,
    finish_message,
    store_message,
)
from devmsg.store.outcomes import VANISHED, record_failure, record_success, skip, start_attempt
from devmsg.store.queries import get_receiver, list_receivers, receiver_email
from devmsg.store.ratelimit import (
    permit_slots,
    permit_usage,
    release_permits,
    renew_permits,
    take_permits,
)
from devmsg.store.stats import stats
from devmsg.store.suppression import (
    add_suppression,
    list_suppressions,
    remove_suppressions,
    suppress_claimed,
    suppressed,
    unsuppress,
)
from devmsg.store.workers import forget_worker, list_workers, register_worker, worker_seen

__all__ = [
    "bounces",
    "INSERT_CHUNK", "INTERRUPTED", "VANISHED", "ControlReport", "Outgoing", "Policy",
    "Selection", "add_receivers", "change", "pause", "paused", "reason_text", "resume",
    "begin_message",
    "claim_due", "claim_ids", "count_due", "database", "discard_message", "existing_ids",
    "finish_message", "from_db", "get_receiver", "insert_sql", "lease_now", "list_receivers",
    "outgoing", "receiver_email",
    "purge", "record_failure", "record_success", "recover_expired", "release_claims",
    "renew", "skip", "start_attempt", "stats", "store_message", "to_db", "utcnow", "writing",
    "defer", "permit_slots", "permit_usage", "release_permits", "renew_permits", "take_permits",
    "add_suppression", "list_suppressions", "remove_suppressions", "suppress_claimed",
    "suppressed", "unsuppress", "next_due_at", "next_lease_end", "forget_worker",
    "list_workers", "register_worker", "worker_seen",
]  # fmt: skip
