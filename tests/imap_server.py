"""A real IMAP server for the tests: Dovecot (Debian's dovecot-imapd), started on a free
loopback port with IMAP over TLS (a certificate from trustme's CA), one user with a
password, and Maildir storage under the test's folder. `.ci/run` installs the package; a
local run without it skips, CI fails."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from devmsg.smtpserver import free_port

USER, PASSWORD = "bounces", "imap-test-password-0815"


@dataclass
class ImapServer:
    port: int
    ca_file: Path
    folder: Path

    def url(self, folder: str = "INBOX") -> str:
        return f"imaps://{USER}@127.0.0.1:{self.port}/{folder}"

    def client(self):
        import imaplib
        import ssl

        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=30)
        imap.login(USER, PASSWORD)
        return imap


def dovecot(folder: Path):
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(binary):
        if os.environ.get("CI"):
            pytest.fail("CI tests IMAP against Dovecot: install dovecot-imapd (.ci/run does)")
        pytest.skip("no Dovecot: apt-get install dovecot-imapd")
    import trustme

    folder.mkdir(parents=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(folder / "key.pem")
    (folder / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(folder / "ca.pem")
    (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    mail = folder / "mail"
    mail.mkdir()
    me = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:  # Dovecot gives mail to no root process: a user of its own
        login, internal, owner = "dovenull", "dovecot", "nobody"
        shutil.chown(mail, "nobody")
    else:
        login = internal = owner = me
    for path in (folder, *folder.parents):  # its processes must reach the certificate
        if path == Path("/"):
            break
        path.chmod(path.stat().st_mode | 0o711)
    port = free_port()
    (folder / "dovecot.conf").write_text(f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = devmsg-test-{port}
log_path = {folder}/dovecot.log
ssl = required
ssl_cert = <{folder}/cert.pem
ssl_key = <{folder}/key.pem
auth_mechanisms = plain
default_login_user = {login}
default_internal_user = {internal}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={owner} gid={pwd.getpwnam(owner).pw_gid} home={mail}/%u
}}
mail_location = maildir:{mail}/%u/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
""")
    subprocess.run([binary, "-c", str(folder / "dovecot.conf")], check=True, timeout=30)
    pid_file = folder / "run" / "master.pid"
    try:
        _wait_listening(port, folder)
        yield ImapServer(port, folder / "ca.pem", folder)
    finally:
        if pid_file.exists():  # it ends its processes on its own (not waited for: 2-3 s)
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def _wait_listening(port: int, folder: Path) -> None:
    """Dovecot forks and returns before its listener is up: connect until it answers."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    log = (folder / "dovecot.log").read_text() if (folder / "dovecot.log").exists() else ""
    raise RuntimeError(f"Dovecot did not start on port {port}: {log[-2000:]}")
