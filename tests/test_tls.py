"""TLS against a private relay: `[smtp] ca_file` trusts its CA (or its self-signed
certificate), `tls_server_name` names the certificate's host when `host` is an address.
Verification is never off; a certificate that does not verify is the relay's failure: the
receiver stays `failed`, not counted toward resend_limit. A real STARTTLS server (aiosmtpd)
with a certificate from a throwaway CA (trustme)."""

from __future__ import annotations

import ssl

import pytest
import trustme
from conftest import Cli, sql, write_project

from devmsg.smtpserver import CapturingServer

SEND = ("send", "--type", "t", "--subject", "s", "--text", "hello", "--to", "ola@example.com")


@pytest.fixture
def relay(home):
    """A STARTTLS relay whose certificate names relay.test, and its CA's file."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("relay.test").configure_cert(context)
    ca.cert_pem.write_to_path(str(home / "relay-ca.pem"))
    with CapturingServer(tls_context=context) as server:
        yield server


def project(home, port: int, extra: str) -> Cli:
    config = write_project(home, port, smtp_extra=extra)
    config.write_text(config.read_text().replace('security = "none"', 'security = "starttls"'))
    return Cli(config)


def test_a_private_ca_and_the_certificates_name_make_it_work(home, relay):
    cli = project(home, relay.port, 'ca_file = "relay-ca.pem"\ntls_server_name = "relay.test"\n')
    result = cli(*SEND)
    assert result.exit_code == 0, result.output
    assert relay.recipients() == ["ola@example.com"]


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ('ca_file = "relay-ca.pem"\n', "IP address mismatch"),  # 127.0.0.1 is not its name
        ('tls_server_name = "relay.test"\n', "unable to get local issuer certificate"),
    ],
)
def test_a_certificate_that_does_not_verify_is_the_relays_failure(home, relay, extra, why):
    cli = project(home, relay.port, extra)
    assert cli(*SEND).exit_code == 3
    assert relay.messages == []
    ((status, failed_count, relay_failures),) = sql(
        "select status, failed_count, relay_failures from receiver"
    )
    assert (status, failed_count, relay_failures) == ("failed", 0, 1)
    ((error, counts),) = sql("select error, counts from failure")
    assert "TLS error: certificate verify failed: " in error and why in error and counts == 0


def test_a_ca_file_that_is_not_there_is_one_line(home, smtp):
    cli = project(home, smtp.port, 'ca_file = "missing.pem"\n')
    result = cli(*SEND)
    assert result.exit_code == 1
    assert "key 'smtp.ca_file': no such file:" in result.output
