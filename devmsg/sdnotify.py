"""systemd's notification protocol (sd_notify(3)): one datagram per state to the socket in
$NOTIFY_SOCKET, for a `Type=notify` unit. Without the variable, nothing is sent."""

from __future__ import annotations

import os
import socket


def enabled() -> bool:
    """Whether a service manager listens ($NOTIFY_SOCKET is set)."""
    return os.environ.get("NOTIFY_SOCKET", "")[:1] in ("/", "@")


def notify(*states: str) -> bool:
    """Send `READY=1`, `STATUS=...`, `WATCHDOG=1` or `STOPPING=1`; whether it was sent."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(states).encode(), address)
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None if not asked."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
