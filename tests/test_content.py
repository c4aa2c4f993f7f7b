"""The store keeps one compressed copy of each receiver's content, the email's bytes: `show`
still gives the exact text and HTML, and every resend the exact same bytes."""

from __future__ import annotations

import json

import pytest
from conftest import Cli, sql, write_project
from hypothesis import given, settings
from hypothesis import strategies as st

from devmsg import content, mime

pytestmark = pytest.mark.sqlite_only

BODY = st.text().filter(lambda s: "\r" not in s).map(lambda s: s if s.endswith("\n") else s + "\n")


@settings(max_examples=500, deadline=None)
@given(text=BODY, html=st.one_of(st.just(""), BODY), smtputf8=st.booleans())
def test_the_email_gives_back_every_body_without_a_carriage_return(text, html, smtputf8):
    email = mime.build(sender="a <a@b.example>", address="x@y.example", name="N", subject="s",
                       text=text, html=html, message_id="<1@b>", date="d", smtputf8=smtputf8)  # fmt: skip
    packed, extra = content.pack(text, html, email)
    assert extra is None
    assert content.email(packed) == email
    assert content.bodies(packed, extra) == (text, html)


def test_show_and_resend_are_exact(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    for text in ("Hei Åse,\nlinje to\n", "windows\r\nline ends\rkept\n"):
        assert cli("send", "--type", "t", "--subject", "s", "--text", text, "--html",
                   f"<p>{text}</p>", "--to", "a@example.com").exit_code == 0  # fmt: skip
    for rid, text in ((1, "Hei Åse,\nlinje to\n"), (2, "windows\r\nline ends\rkept\n")):
        shown = json.loads(cli("show", str(rid), "--json").stdout)
        assert (shown["body_text"], shown["body_html"]) == (text, f"<p>{text}</p>\n")
    assert sql("select receiver_id from content where bodies is not null") == [(2,)]
    assert cli("resend", "1", "2").exit_code == 0
    first, second, *again = (m.content for m in smtp.messages)
    assert sorted(again) == sorted([first, second])  # the same bytes, Message-ID included
