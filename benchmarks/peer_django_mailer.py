"""The same latency case with django-mailer, for the README's comparison: run by
`benchmarks/latency.py --peer-python VENV/bin/python`, under a scratch virtualenv that has
django, django-mailer, psycopg and aiosmtpd (never a dependency of devmsg):

    python -m venv /tmp/djvenv && /tmp/djvenv/bin/pip install django django-mailer 'psycopg[binary]'

`--database` is a PostgreSQL URL (then `runmailer_pg`, which wakes on NOTIFY) or a SQLite
path (then `runmailer`, with its default sleep). The application sends with Django's
`send_mail` through `mailer.backend.DbBackend`; it prints when each call returned, as JSON,
then keeps the mailer running until its stdin closes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlparse


def configure(database: str, port: int) -> None:
    import django
    from django.conf import settings

    if database.startswith("postgresql://"):
        url = urlparse(database)
        host = parse_qs(url.query).get("host", [url.hostname])[0]
        db = {"ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"),
              "USER": url.username, "HOST": host, "PORT": url.port or 5432}  # fmt: skip
    else:
        db = {"ENGINE": "django.db.backends.sqlite3", "NAME": database}
    settings.configure(
        DATABASES={"default": db}, INSTALLED_APPS=["mailer"], USE_TZ=True,
        EMAIL_BACKEND="mailer.backend.DbBackend",
        MAILER_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, DEFAULT_FROM_EMAIL="noreply@devilry.example",
        MAILER_LOCK_PATH=os.path.join(os.getcwd(), "send_mail"),  # in the caller's scratch folder
    )  # fmt: skip
    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--tag", default="peer")
    parser.add_argument("--mailer", action="store_true", help="run the mailer itself")
    args = parser.parse_args()
    configure(args.database, args.port)
    from django.core.management import call_command

    command = "runmailer_pg" if args.database.startswith("postgresql://") else "runmailer"
    if args.mailer:
        call_command(command)
        return
    call_command("migrate", verbosity=0)
    mailer = subprocess.Popen(
        [sys.executable, __file__, "--mailer", "--database", args.database,
         "--port", str(args.port)], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in mailer.stdout:  # "Starting django-mailer send loop."
        if "Starting" in line:
            break
    time.sleep(1.0)  # its LISTEN follows the line
    from django.core.mail import send_mail

    returned: dict[str, float] = {}
    count, start = int(args.rate * args.duration), time.monotonic()
    for i in range(count):
        wait = start + i / args.rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        to = f"{args.tag}{i}@example.com"
        send_mail("New deadline for Oblig 2", "The deadline moved.", None, [to])
        returned[to] = time.time()
    sys.stdout.write(json.dumps({"command": command, "returned": returned}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # the caller has counted what the server accepted
    mailer.terminate()
    mailer.wait(30)


if __name__ == "__main__":
    main()
