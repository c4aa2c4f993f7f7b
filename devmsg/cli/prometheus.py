"""`devmsg stats --prometheus`: the stats in Prometheus' text exposition format, for
node_exporter's textfile collector from cron. No rich here: a cron tick pays only for what
it prints."""

from __future__ import annotations

import datetime as dt

_METRICS = (  # name, help, key in the stats
    ("devmsg_due", "Receivers due for delivery now.", "due"),
    ("devmsg_oldest_unsent_age_seconds",
     "Age of the oldest receiver not yet sent (not_sent, failed, held); 0 when none.",
     "oldest_unsent_age_seconds"),
    ("devmsg_sent_last_hour", "Receivers sent in the last hour.", "sent_last_hour"),
    ("devmsg_failed_last_hour", "Failed attempts in the last hour.", "failed_last_hour"),
    ("devmsg_error_last_hour", "Receivers that became error in the last hour.",
     "error_last_hour"),
    ("devmsg_sent_last_24h", "Receivers sent in the last 24 hours.", "sent_last_24h"),
    ("devmsg_failed_last_24h", "Failed attempts in the last 24 hours.", "failed_last_24h"),
    ("devmsg_error_last_24h", "Receivers that became error in the last 24 hours.",
     "error_last_24h"),
    ("devmsg_bounces_last_24h", "Permanent bounces read back in the last 24 hours.",
     "bounces_last_24h"),
    ("devmsg_paused", "1 while sending is paused.", "paused"),
)  # fmt: skip


def _stamp(when: dt.datetime | None) -> str:
    return "0" if when is None else f"{when.timestamp():.3f}"


def _label(text: str) -> str:
    """A label value, escaped as the exposition format asks."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(data: dict) -> str:
    """The stats in Prometheus' text exposition format, every metric a gauge."""
    out = [
        "# HELP devmsg_receivers Receivers by status (sending: under a live claim).",
        "# TYPE devmsg_receivers gauge",
    ]
    counts = data["receivers"]
    if counts and isinstance(next(iter(counts.values())), dict):
        for kind, row in counts.items():
            label = _label(kind)
            out += [f'devmsg_receivers{{status="{s}",type="{label}"}} {n}' for s, n in row.items()]
    else:
        out += [f'devmsg_receivers{{status="{s}"}} {n}' for s, n in counts.items()]
    for name, text, key in _METRICS:
        value = data[key]
        value = 0 if value is None else int(value) if isinstance(value, bool) else value
        out += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value}"]
    last = data["last_attempt_at"]
    out += [
        "# HELP devmsg_last_attempt_timestamp_seconds When the last delivery attempt was made.",
        "# TYPE devmsg_last_attempt_timestamp_seconds gauge",
        f"devmsg_last_attempt_timestamp_seconds {0 if last is None else last.timestamp():.3f}",
    ]
    relay = data.get("relay", {})
    success, failure = relay.get("last_success_at"), relay.get("last_failure_at")
    out += [
        "# HELP devmsg_relay_up 1 if the relay took the last attempt's connection and sender.",
        "# TYPE devmsg_relay_up gauge",
        f"devmsg_relay_up {int(relay.get('up', True))}",
        "# HELP devmsg_relay_last_success_timestamp_seconds When the relay last accepted mail.",
        "# TYPE devmsg_relay_last_success_timestamp_seconds gauge",
        f"devmsg_relay_last_success_timestamp_seconds {_stamp(success)}",
        "# HELP devmsg_relay_last_failure_timestamp_seconds The last relay failure (no "
        "connection, or a refusal at MAIL FROM).",
        "# TYPE devmsg_relay_last_failure_timestamp_seconds gauge",
        f"devmsg_relay_last_failure_timestamp_seconds {_stamp(failure)}",
    ]
    workers = data.get("workers", [])
    out += [
        "# HELP devmsg_workers Live devmsg workers (a heartbeat within a lease).",
        "# TYPE devmsg_workers gauge",
        f"devmsg_workers {sum(1 for w in workers if w['live'])}",
        "# HELP devmsg_worker_last_seen_timestamp_seconds Each worker's last heartbeat.",
        "# TYPE devmsg_worker_last_seen_timestamp_seconds gauge",
    ]
    for w in workers:
        out.append(
            f'devmsg_worker_last_seen_timestamp_seconds{{worker="{_label(w["name"])}"}} '
            f"{w['last_seen_at'].timestamp():.3f}"
        )
    return "\n".join(out) + "\n"
