"""Hostile input never corrupts the store or crashes with a traceback: property-based tests
(hypothesis). Each case ends in a clear InputError with the store exactly as before, or in
a correct store (and, where sent, a correct email)."""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import json
import re
import string

import pytest
from conftest import sql, write_project
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devmsg import Outbox, Recipient
from devmsg.addresses import check_address
from devmsg.config import load_config
from devmsg.errors import ConfigError, InputError
from devmsg.inputs import parse_json_object, read_receivers
from devmsg.render import one_line

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def outbox(home, smtp):
    with Outbox.open(write_project(home, smtp.port)) as box:
        yield box


def snapshot(outbox):
    return [
        sql(f"select * from {table} order by 1")
        for table in ("message", "receiver", "content", "failure")
    ]


def queue(outbox, recipients, **kwargs):
    kwargs.setdefault("subject", "s")
    kwargs.setdefault("text", "t")
    return outbox.send(type="t", recipients=recipients, queue=True, **kwargs)


cells = st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["a@example.com", "Ola <ola@example.no>", "ola@bücher.example", "x@", "", "nb_NO", "\n",
     '"', "a@example.com\nBcc: b@example.com", "a" * 5000]
)  # fmt: skip


@st.composite
def csv_files(draw):
    header = draw(st.lists(st.sampled_from(["address", "name", "language", "extra", ""]),
                           min_size=0, max_size=4))  # fmt: skip
    rows = draw(st.lists(st.lists(cells, max_size=5), max_size=6))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    text = bom + "\n".join(",".join(json.dumps(c) if draw(st.booleans()) else c for c in row)
                           for row in [header, *rows])  # fmt: skip
    raw = text.encode("utf-8")
    if draw(st.booleans()):
        raw += draw(st.binary(max_size=20))  # maybe invalid UTF-8
    return raw


@st.composite
def jsonl_files(draw):
    objects = st.dictionaries(st.sampled_from(["address", "name", "language", "x"]),
                              cells | st.integers() | st.none(), max_size=4)  # fmt: skip
    lines = draw(st.lists(objects.map(json.dumps) | cells, max_size=6))
    raw = ("\ufeff" if draw(st.booleans()) else "") + "\n".join(lines)
    return raw.encode("utf-8") + (draw(st.binary(max_size=10)) if draw(st.booleans()) else b"")


def _try_file(outbox, tmp_path, raw: bytes, suffix: str):
    path = tmp_path / f"receivers{suffix}"
    path.write_bytes(raw)
    before = snapshot(outbox)
    try:
        report = queue(outbox, read_receivers(str(path)))
    except InputError as exc:
        assert "\n" not in str(exc)  # one line, as the CLI prints it
        assert str(exc).startswith(str(path))
        assert snapshot(outbox) == before
        return
    stored = outbox.list(message=report.message_id, limit=0)
    assert len(stored) == len(report.receiver_ids) > 0
    for row in stored:
        check_address(row["to"])  # everything stored is a valid address
        assert "\n" not in row["name"]


@pytest.mark.sqlite_only  # parsing hostile files: the store is the same code on both
@SETTINGS
@given(raw=csv_files())
def test_hostile_csv(outbox, tmp_path, raw):
    _try_file(outbox, tmp_path, raw, ".csv")


@pytest.mark.sqlite_only  # parsing hostile files: the store is the same code on both
@SETTINGS
@given(raw=jsonl_files())
def test_hostile_jsonl(outbox, tmp_path, raw):
    _try_file(outbox, tmp_path, raw, ".jsonl")


def test_edge_files(outbox, tmp_path):
    cases = {
        "empty.csv": b"",
        "header-only.csv": b"address,name\n",
        "huge-line.csv": b"address\n" + b"a" * 300_000 + b"@example.com\n",
        "missing.csv": b"name,language\nOla,nb\n",
        "bad-utf8.csv": b"address\n\xff\xfe@example.com\n",
        "empty.jsonl": b"\n\n",
        "list.jsonl": b"[1, 2]\n",
    }
    for name, raw in cases.items():
        path = tmp_path / name
        path.write_bytes(raw)
        with pytest.raises(InputError) as info:
            list(read_receivers(str(path)))
        assert str(info.value).startswith(str(path)), name


@SETTINGS
@given(address=st.text(max_size=80) | st.emails())
def test_addresses(address):
    try:
        checked = check_address(address)
    except InputError as exc:
        assert "invalid address" in str(exc)
        return
    assert "\n" not in checked.envelope and "\r" not in checked.envelope
    assert checked.envelope.isascii() or checked.smtputf8


@SETTINGS
@given(depth=st.integers(1, 200_000), size=st.integers(0, 2_000_000))
def test_context_json_deep_and_huge(outbox, depth, size):
    deep = "[" * depth + "]" * depth
    try:
        value = parse_json_object(f'{{"d": {deep}}}', "--context")
    except InputError as exc:
        assert str(exc).startswith("--context: invalid JSON")
    else:
        assert "d" in value
    big = parse_json_object(json.dumps({"x": "é" * size}), "--context")
    assert len(big["x"]) == size


def test_huge_context_value_is_stored_and_rendered(outbox, tmp_path):
    report = queue(outbox, [Recipient("a@example.com")], subject=None, text=None,
                   template="deadline_moved",
                   context={"assignment": "A" * 1_000_000, "deadline": "2026-01-01",
                            "reason": "", "url": "u"})  # fmt: skip
    shown = outbox.show(report.receiver_ids[0])
    assert "A" * 1_000_000 in shown["body_text"]


template_text = st.lists(
    st.sampled_from(list("{}%#()|_'\" \nabcxyz=.") + ["{{", "}}", "{%", "%}", "if ", "endif",
                    "trans", "endtrans", "receiver.name", "missing", "_(", "x|format_date"]),
    max_size=25,
).map("".join)  # fmt: skip


@pytest.mark.sqlite_only  # parsing hostile files: the store is the same code on both
@SETTINGS
@given(source=template_text)
def test_hostile_templates(outbox, source):
    folder = outbox.config.templates / "fuzz"
    folder.mkdir(exist_ok=True)
    (folder / "subject.txt").write_text("Subject")
    (folder / "body.html").write_text(source)
    before = snapshot(outbox)
    try:
        report = queue(outbox, [Recipient("a@example.com", "A")], subject=None, text=None,
                       template="fuzz", context={"x": 1})  # fmt: skip
    except InputError as exc:
        message = str(exc)
        assert message.startswith(str(folder / "body.html")), message
        assert snapshot(outbox) == before
    else:
        assert len(report.receiver_ids) == 1


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters as \\u."""
    return (
        '"'
        + "".join(
            "\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c
            for c in text
        )
        + '"'
    )


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=names, subject=names.filter(lambda s: s.strip()), sender=names)
@example(name="", subject="s", sender="Devilry, Inc.")  # one mailbox, not two
@example(name="", subject="s", sender='Dr. "Who" Ås')
def test_any_name_and_subject_make_one_correct_email(outbox, smtp, name, subject, sender):
    smtp.messages.clear()
    # Any sender's display name, as written in devmsg.toml (commas, quotes, dots, UTF-8);
    # one with a control character (a line break, NUL) is refused when the config loads.
    toml = outbox.config.path.with_name("sender.toml")
    line = "sender = " + _toml_string(f"{sender} <noreply@devilry.example>")
    toml.write_text(re.sub(r"^sender = .*$", lambda _: line, outbox.config.path.read_text(),
                           flags=re.M))  # fmt: skip
    try:
        outbox.config = load_config(toml)
    except ConfigError as exc:
        assert re.search(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]", sender), exc  # control characters
        assert str(exc).count("\n") == 0 and "key 'sender' is not an email address" in str(exc)
        return
    report = outbox.send(type="t", subject=subject, text="body",
                         recipients=[Recipient("a@example.com", name)])  # fmt: skip
    assert report.sent == 1
    [received] = smtp.messages
    assert received.rcpt_tos == ["a@example.com"]
    msg = email.message_from_bytes(received.content, policy=email.policy.default)
    assert msg["Subject"] == one_line(subject)
    [to] = msg["To"].addresses
    assert to.addr_spec == "a@example.com"
    # Python's address parser puts a space between adjacent encoded words (RFC 2047 says
    # none); decode the raw header by the RFC instead.
    raw = email.message_from_bytes(received.content, policy=email.policy.compat32)["To"]
    decoded = str(email.header.make_header(email.header.decode_header(raw)))
    expected = one_line(name)
    if not expected:
        assert decoded == "a@example.com"
    else:
        assert decoded == f"{expected} <a@example.com>" or (
            email.utils.parseaddr(decoded) == (expected, "a@example.com")
        ), decoded
    assert msg["Bcc"] is None and msg["Cc"] is None
    assert set(string.whitespace) & set(msg["Subject"]) <= {" "}
    [sent_from] = msg["From"].addresses  # one mailbox, whatever the name holds
    assert sent_from.addr_spec == "noreply@devilry.example"
    raw = email.message_from_bytes(received.content, policy=email.policy.compat32)["From"]
    shown, address = email.utils.parseaddr(str(email.header.make_header(
        email.header.decode_header(raw))))  # fmt: skip
    written = one_line(sender)
    if written.startswith('"') and written.endswith('"') and len(written) > 1:
        written = " ".join(re.sub(r"\\(.)", r"\1", written[1:-1]).split())  # quoted already
    assert (shown, address) == (written, "noreply@devilry.example") or (
        sent_from.display_name == written
    ), (raw, written)


ascii_addresses = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.text(alphabet=string.ascii_letters + string.digits + ".!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=70),
    st.lists(st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=64),
             min_size=1, max_size=3),
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=6)
    | st.sampled_from(["test", "local", "COM", "no", "xn--p1ai"]),
) | st.sampled_from(["NOC@example.com", "Postmaster@Example.org", "Info@x.no"])  # fmt: skip


@pytest.mark.unit
@settings(max_examples=500, deadline=None)
@given(address=ascii_addresses)
def test_fast_address_check_agrees_with_email_validator(address):
    from email_validator import EmailNotValidError, validate_email

    from devmsg.addresses import _plain

    fast = _plain(address)
    try:
        full = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        assert fast is None, address
        return
    if fast is not None:
        assert fast.address == full.normalized and fast.envelope == full.ascii_email
        assert not full.smtputf8
