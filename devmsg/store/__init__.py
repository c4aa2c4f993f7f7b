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
from devmsg.store.base import insert_sql, lease_now
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
from devmsg.store.workers import forget_worker, register_worker, worker_seen

# What the use cases call; each module's other names stay its own.
__all__ = [
    "bounces", "database",
    "INTERRUPTED", "VANISHED", "ControlReport", "Outgoing", "Policy", "Selection",
    "add_receivers", "begin_message", "discard_message", "finish_message", "store_message",
    "change", "pause", "paused", "reason_text", "resume",
    "claim_due", "claim_ids", "count_due", "defer", "existing_ids", "next_due_at",
    "next_lease_end", "outgoing", "recover_expired", "release_claims", "renew",
    "record_failure", "record_success", "skip", "start_attempt",
    "get_receiver", "list_receivers", "receiver_email", "stats", "purge",
    "insert_sql", "lease_now",
    "permit_slots", "permit_usage", "release_permits", "renew_permits", "take_permits",
    "add_suppression", "list_suppressions", "remove_suppressions", "suppress_claimed",
    "suppressed", "unsuppress",
    "forget_worker", "register_worker", "worker_seen",
]  # fmt: skip
