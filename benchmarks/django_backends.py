"""The Django email backend's per-call time, queued, against post-office's and
django-mailer's in the same run: what one `send_mail()` costs a long-lived Django process
that stores the mail for a worker to deliver. Run by hand, under a scratch virtualenv that
has devmsg, django, django-post-office and django-mailer (never dependencies of devmsg):

    python -m venv /tmp/bvenv && /tmp/bvenv/bin/pip install '.[django,postgres]' \\
        django-post-office django-mailer
    /tmp/bvenv/bin/python benchmarks/django_backends.py                # SQLite
    /tmp/bvenv/bin/python benchmarks/django_backends.py --postgres URL # PostgreSQL

Each backend keeps its defaults: post-office and django-mailer store in Django's database
(SQLite, or the same PostgreSQL server), devmsg in its own store of the same kind. Rounds
interleave the backends, so a noisy neighbour hits all three alike; it prints each
backend's median per call (with the middle half's range) and the ratio to post-office's,
for a plain `send_mail` and for an `EmailMultiAlternatives` with HTML and a 40 KB PDF."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

BACKENDS = {
    "devmsg": "devmsg.django.EmailBackend",
    "post-office": "post_office.EmailBackend",
    "django-mailer": "mailer.backend.DbBackend",
}
TARGET = 0.75  # devmsg's per call, at most this times post-office's


def configure(folder: Path, postgres: str | None) -> None:
    import django
    from django.conf import settings

    if postgres:
        url = urlparse(postgres)
        host = parse_qs(url.query).get("host", [url.hostname])[0]
        db = {"ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"),
              "USER": url.username, "HOST": host, "PORT": url.port or 5432}  # fmt: skip
        store = postgres  # the same server and database, as devmsg.toml names it
    else:
        db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(folder / "django.sqlite3")}
        store = str(folder / "devmsg.sqlite3")
    (folder / "devmsg.toml").write_text(
        f'database = "{store}"\nsender = "Devilry <noreply@devilry.example>"\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 2525\n'
    )
    settings.configure(
        DATABASES={"default": db}, INSTALLED_APPS=["post_office", "mailer"], USE_TZ=True,
        DEFAULT_FROM_EMAIL="Devilry <noreply@devilry.example>",
        DEVMSG_CONFIG=str(folder / "devmsg.toml"), DEVMSG_QUEUE=True,
        POST_OFFICE={"DEFAULT_PRIORITY": "medium"},  # queued, as its default
        MAILER_LOCK_PATH=str(folder / "send_mail"),
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],  # post-office's
    )  # fmt: skip
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def plain(connection, i: int) -> None:
    from django.core.mail import send_mail

    send_mail("New deadline for Oblig 2", "The deadline moved to Friday.\n" * 10, None,
              [f"student{i}@example.com"], connection=connection)  # fmt: skip


PDF = os.urandom(40 * 1024)


def rich(connection, i: int) -> None:
    from django.core.mail import EmailMultiAlternatives

    message = EmailMultiAlternatives(
        "Your receipt", "Thank you for the order.\n" * 10, None, [f"buyer{i}@example.com"],
        cc=["accounts@example.com"], headers={"X-Order": str(i)}, connection=connection,
    )  # fmt: skip
    message.attach_alternative("<p>Thank you for the <b>order</b>.</p>" * 10, "text/html")
    message.attach("receipt.pdf", PDF, "application/pdf")
    message.send()


def measure(case, rounds: int, calls: int) -> dict[str, list[float]]:
    from django.core.mail import get_connection

    connections = {name: get_connection(path) for name, path in BACKENDS.items()}
    for connection in connections.values():  # warm: imports, first connection, caches
        for i in range(20):
            case(connection, i)
    times: dict[str, list[float]] = {name: [] for name in BACKENDS}
    ratios: dict[str, list[float]] = {name: [] for name in BACKENDS}
    for r in range(rounds):
        medians = {}
        order = list(connections.items())
        order = order[r % 3 :] + order[: r % 3]  # each backend first in turn
        for name, connection in order:
            spent = []
            for i in range(calls):
                start = time.perf_counter()
                case(connection, r * calls + i)
                spent.append(time.perf_counter() - start)
            times[name] += spent
            medians[name] = statistics.median(spent)
        for name in BACKENDS:
            ratios[name].append(medians[name] / medians["post-office"])
    return {"times": times, "ratios": ratios}


def report(title: str, result: dict) -> float:
    print(f"\n{title}: per call, queued (median; middle half)")
    for name in BACKENDS:
        spent = sorted(result["times"][name])
        q1, q3 = spent[len(spent) // 4], spent[3 * len(spent) // 4]
        ratio = statistics.median(result["ratios"][name])
        print(f"  {name:14} {statistics.median(spent) * 1000:7.3f} ms "
              f"({q1 * 1000:.3f}-{q3 * 1000:.3f})   x{ratio:.2f} post-office's")  # fmt: skip
    ratio = statistics.median(result["ratios"]["devmsg"])
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"  target: devmsg <= {TARGET}x post-office's: {ratio:.2f} ({verdict})")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=200, help="calls a backend a round")
    parser.add_argument("--postgres", help="a PostgreSQL URL, for all three backends")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devmsg-django-bench-") as folder:
        configure(Path(folder), args.postgres)
        where = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{len(BACKENDS)} backends, {args.rounds} rounds of {args.calls} calls, {where}")
        report("send_mail", measure(plain, args.rounds, args.calls))
        report(
            "EmailMultiAlternatives, HTML, 40 KB PDF, cc", measure(rich, args.rounds, args.calls)
        )


if __name__ == "__main__":
    main()
