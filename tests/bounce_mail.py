"""Bounce mail as real servers write it, for the tests: the DSNs of Postfix, Exim, Exchange
and Gmail (RFC 3464, each with its own parts and wording), the older non-standard bounces
of Exim and qmail (no report: flufl.bounce's detectors read them), a delay notice and a
complaint report (ARF, RFC 5965). Each is addressed to `to` (the VERP return path) and
returns the original's headers, with its Message-ID."""

from __future__ import annotations

DATE = "Thu, 03 Dec 2026 10:15:00 +0100"


def _multipart(boundary: str, head: str, parts: list[tuple[str, str]], report: str) -> bytes:
    body = "".join(f"--{boundary}\n{ctype}\n\n{text}\n" for ctype, text in parts)
    text = (
        f"{head}MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report};\n\tboundary="{boundary}"\n\n'
        f"This is a MIME-encapsulated message.\n\n{body}--{boundary}--\n"
    )
    return text.replace("\n", "\r\n").encode()


def _original(message_id: str, sender: str = "Devilry <noreply@devilry.example>") -> str:
    return (
        f"From: {sender}\nTo: someone\nSubject: Feedback on Oblig 1\n"
        f"Message-ID: {message_id}\nDate: {DATE}\n"
    )


def postfix(to: str, recipient: str, message_id: str, status: str = "5.1.1",
            diagnostic: str = "", action: str = "failed") -> bytes:  # fmt: skip
    diagnostic = (
        diagnostic or f"smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown"
    )
    return _multipart(
        "4E1D81A0C2.1701594900/mx.devilry.example",
        f"Return-Path: <>\nDelivered-To: {to}\nX-Original-To: {to}\n"
        f"From: MAILER-DAEMON@mx.devilry.example (Mail Delivery System)\n"
        f"Subject: Undelivered Mail Returned to Sender\nTo: {to}\nDate: {DATE}\n"
        f"Message-Id: <20261203091500.4E1D81A0C2@mx.devilry.example>\n"
        f"Auto-Submitted: auto-replied\n",
        [
            (
                "Content-Description: Notification\nContent-Type: text/plain; charset=us-ascii",
                "This is the mail system at host mx.devilry.example.\n\nI'm sorry to have to "
                f"inform you that your message could not\nbe delivered to one or more recipients.\n\n"
                f"<{recipient}>: host mx.example.no[192.0.2.25] said: 550 {status}\n",
            ),
            (
                "Content-Description: Delivery report\nContent-Type: message/delivery-status",
                "Reporting-MTA: dns; mx.devilry.example\nX-Postfix-Queue-ID: 4E1D81A0C2\n"
                f"Arrival-Date: {DATE}\n\nFinal-Recipient: rfc822; {recipient}\n"
                f"Original-Recipient: rfc822;{recipient}\nAction: {action}\nStatus: {status}\n"
                f"Remote-MTA: dns; mx.example.no\nDiagnostic-Code: {diagnostic}\n",
            ),
            (
                "Content-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers",
                _original(message_id),
            ),
        ],  # fmt: skip
        "delivery-status",
    )


def exim(to: str, recipient: str, message_id: str, status: str = "5.1.1") -> bytes:
    return _multipart(
        "1701594900-eximdsn-1804289383",
        f"Envelope-to: {to}\nFrom: Mail Delivery System <Mailer-Daemon@mail.example.no>\n"
        f"To: {to}\nSubject: Mail delivery failed: returning message to sender\n"
        f"X-Failed-Recipients: {recipient}\nAuto-Submitted: auto-replied\nDate: {DATE}\n"
        f"Message-Id: <E1rAbCd-000123-Xy@mail.example.no>\n",
        [
            (
                "Content-type: text/plain; charset=us-ascii",
                "This message was created automatically by mail delivery software.\n\nA message "
                f"that you sent could not be delivered to one or more of its\nrecipients. This is "
                f"a permanent error. The following address(es) failed:\n\n  {recipient}\n    "
                f"host mx.example.no [192.0.2.25]\n    SMTP error from remote mail server after "
                f"RCPT TO:<{recipient}>:\n    550 {status} No such user here\n",
            ),
            (
                "Content-type: message/delivery-status",
                "Reporting-MTA: dns; mail.example.no\n\nAction: failed\n"
                f"Final-Recipient: rfc822;{recipient}\nStatus: {status}\n"
                f"Remote-MTA: dns; mx.example.no\nDiagnostic-Code: smtp; 550 {status} No such user here\n",
            ),
            ("Content-type: message/rfc822", _original(message_id) + "\nThe body.\n"),
        ],  # fmt: skip
        "delivery-status",
    )


def exchange(to: str, recipient: str, message_id: str, status: str = "5.1.10") -> bytes:
    return _multipart(
        "_000_DB9PR01MB7354EXCH_",
        f"From: Microsoft Outlook <postmaster@example.onmicrosoft.com>\nTo: <{to}>\n"
        f"Date: {DATE}\nSubject: Undeliverable: Feedback on Oblig 1\n"
        f"Content-Language: en-US\nX-MS-Exchange-Message-Is-Ndr:\n"
        f"Message-ID: <a1b2c3d4-NDR@DB9PR01MB7354.eurprd01.prod.exchangelabs.com>\n",
        [
            (
                'Content-Type: text/plain; charset="us-ascii"',
                f"Delivery has failed to these recipients or groups:\n\n{recipient}\nThe email "
                "address you entered couldn't be found.\n\nDiagnostic information for "
                f"administrators:\n\nRemote Server returned '550 {status} "
                "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'\n",
            ),
            (
                "Content-Type: message/delivery-status",
                "Reporting-MTA: dns;DB9PR01MB7354.eurprd01.prod.exchangelabs.com\n"
                f"Received-From-MTA: dns;mx.devilry.example\nArrival-Date: {DATE}\n\n"
                f"Original-Recipient: rfc822;{recipient}\nFinal-Recipient: rfc822;{recipient}\n"
                f"Action: failed\nStatus: {status}\nDiagnostic-Code: smtp;550 {status} "
                "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup\n",
            ),
            ("Content-Type: message/rfc822", _original(message_id) + "\nThe body.\n"),
        ],  # fmt: skip
        "delivery-status",
    )


def gmail(to: str, recipient: str, message_id: str, status: str = "5.1.1") -> bytes:
    return _multipart(
        "000000000000a1b2c3d4e5f60718",
        f"Delivered-To: {to}\nFrom: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        f"To: {to}\nAuto-Submitted: auto-replied\nSubject: Delivery Status Notification "
        f"(Failure)\nReferences: {message_id}\nIn-Reply-To: {message_id}\n"
        f"X-Failed-Recipients: {recipient}\nMessage-ID: <6565a1b2.abc.gmail-dsn@mx.google.com>\n"
        f"Date: {DATE}\n",
        [
            (
                'Content-Type: multipart/related; boundary="000000000000gmailrel"',
                '--000000000000gmailrel\nContent-Type: text/html; charset="UTF-8"\n\n'
                "<html><body><h2>Address not found</h2><p>Your message wasn't delivered to "
                f'<a href="mailto:{recipient}">{recipient}</a> because the address couldn\'t '
                "be found.</p></body></html>\n--000000000000gmailrel--",
            ),
            (
                "Content-Type: message/delivery-status",
                "Reporting-MTA: dns; googlemail.com\nReceived-From-MTA: dns; noreply@devilry.example\n"
                f"Arrival-Date: {DATE}\nX-Original-Message-ID: {message_id}\n\n"
                f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: {status}\n"
                f"Diagnostic-Code: smtp; 550-{status} The email account that you tried to reach "
                "does not exist. Please try\n 550-5.1.1 double-checking the recipient's email "
                "address for typos.\nLast-Attempt-Date: Thu, 03 Dec 2026 01:15:02 -0800 (PST)\n",
            ),
            ("Content-Type: text/rfc822-headers", _original(message_id)),
        ],  # fmt: skip
        "delivery-status",
    )


def exim_legacy(to: str, recipient: str, message_id: str, status: str = "5.1.1") -> bytes:
    """Exim before it wrote DSNs: plain text, the failed address in X-Failed-Recipients."""
    return (
        (
            f"Envelope-to: {to}\nFrom: Mail Delivery System <Mailer-Daemon@old.example.no>\n"
            f"To: {to}\nSubject: Mail delivery failed: returning message to sender\n"
            f"X-Failed-Recipients: {recipient}\nMessage-Id: <E1old-0001-Ab@old.example.no>\n"
            f"Date: {DATE}\n\nThis message was created automatically by mail delivery software.\n\n"
            f"A message that you sent could not be delivered to one or more of its\nrecipients. "
            f"This is a permanent error. The following address(es) failed:\n\n  {recipient}\n"
            f"    SMTP error from remote mail server after RCPT TO:<{recipient}>:\n"
            f"    host mx.example.no [192.0.2.25]: 550 {status} No such user\n\n"
            f"------ This is a copy of the message, including all the headers. ------\n\n"
            + _original(message_id)
            + "\nThe body.\n"
        )
        .replace("\n", "\r\n")
        .encode()
    )


def qmail(to: str, recipient: str, message_id: str, status: str = "5.1.1") -> bytes:
    return (
        (
            f"Return-Path: <>\nDelivered-To: {to}\nFrom: MAILER-DAEMON@qmail.example.no\n"
            f"To: {to}\nSubject: failure notice\nDate: {DATE}\n\n"
            "Hi. This is the qmail-send program at qmail.example.no.\nI'm afraid I wasn't able "
            "to deliver your message to the following addresses.\nThis is a permanent error; "
            "I've given up. Sorry it didn't work out.\n\n"
            f"<{recipient}>:\n192.0.2.25 does not like recipient.\nRemote host said: 550 {status} "
            "no mailbox here by that name\nGiving up on 192.0.2.25.\n\n"
            "--- Below this line is a copy of the message.\n\n"
            + _original(message_id)
            + "\nThe body.\n"
        )
        .replace("\n", "\r\n")
        .encode()
    )


def delayed(to: str, recipient: str, message_id: str) -> bytes:
    return postfix(to, recipient, message_id, status="4.4.1", action="delayed",
                   diagnostic="X-Postfix; connect to mx.example.no[192.0.2.25]:25: Connection timed out")  # fmt: skip


def complaint(return_path: str, recipient: str, message_id: str) -> bytes:
    """A feedback loop's abuse report: sent to the feedback address, not the return path,
    so the original's Return-Path (as its receiving server wrote it) carries the VERP."""
    return _multipart(
        "----=_ARF_part_4711",
        "From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>\n"
        "To: fbl@devilry.example\nSubject: FW: Feedback on Oblig 1\n"
        f"Message-ID: <arf.4711@arf.mail.yahoo.com>\nDate: {DATE}\n",
        [
            (
                'Content-Type: text/plain; charset="US-ASCII"',
                "This is an email abuse report for an email message received from IP 192.0.2.10.",
            ),
            (
                "Content-Type: message/feedback-report",
                "Feedback-Type: abuse\nUser-Agent: Yahoo!-Mail-Feedback/2.0\nVersion: 1\n"
                f"Original-Mail-From: <{return_path}>\nOriginal-Rcpt-To: <{recipient}>\n"
                f"Arrival-Date: {DATE}\nReporting-MTA: dns; mta1.mail.yahoo.com\n",
            ),
            (
                "Content-Type: message/rfc822",
                f"Return-Path: <{return_path}>\n" + _original(message_id) + "\nThe body.\n",
            ),
        ],  # fmt: skip
        "feedback-report",
    )


FORMATS = {"postfix": postfix, "exim": exim, "exchange": exchange, "gmail": gmail,
           "exim_legacy": exim_legacy, "qmail": qmail}  # fmt: skip
