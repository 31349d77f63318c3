"""Tests for PII redaction (``fmhub data import --redact-pii``): positives per kind, look-alikes that
must survive, mixed sentences with exact counts, and Hypothesis properties (no leak, idempotent)."""

from __future__ import annotations

import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmhub.data import _pii
from fmhub.data._pii import PII_KINDS, Redactor, redact


def test_exported_api() -> None:
    assert _pii.__all__ == ["PII_KINDS", "redact", "Redactor"]
    assert PII_KINDS == ("EMAIL", "PHONE", "IPV4", "IPV6", "CREDIT_CARD", "IBAN")


POSITIVES = {
    "EMAIL": ["jo@example.com", "first.last+tag@sub.example.co.uk", "a_b-c%d@mail-server.io",
              "X9@EXAMPLE.ORG", "user123@host.museum"],
    "PHONE": ["+44 20 7946 0958", "+1 (555) 123-4567", "+49 (0)30 1234567", "+33 1 23 45 67 89",
              "+41.22.123.45.67", "+12025550123", "+1-202-555-0123", "(555) 123-4567", "555-123-4567",
              "555.123.4567", "1-800-555-0199", "030 1234567", "06 12 34 56 78", "01.23.45.67.89",
              "020 7946 0958", "0049 30 1234567"],
    "IPV4": ["192.168.0.1", "10.0.0.255", "8.8.8.8", "255.255.255.255", "0.0.0.0"],
    "IPV6": ["2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8::1", "fe80::1", "::1",
             "::ffff:192.168.0.1", "2001:db8:0:0:1:0:0:1"],
    "CREDIT_CARD": ["4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005",
                    "3782 822463 10005", "6011111111111117", "4222222222222"],
    "IBAN": ["DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32",
             "GB82WEST12345698765432", "NO93 8601 1117 947", "FR14 2004 1010 0505 0001 3M02 606",
             "NL91ABNA0417164300"],
}


@pytest.mark.parametrize("kind,value", [(k, v) for k, vs in POSITIVES.items() for v in vs])
def test_positive_alone_and_in_a_sentence(kind: str, value: str) -> None:
    assert redact(value) == (f"[{kind}]", Counter({kind: 1}))
    text, counts = redact(f"Contact: {value}, thanks.")
    assert text == f"Contact: [{kind}], thanks."
    assert counts == Counter({kind: 1})


NEGATIVES = [
    # dates and times
    "2024-01-15", "15.01.2024", "01/15/2024", "2024/01/15", "15-01-2024", "on 2024-01-15 10:30:00",
    "01.02.2024 12", "12:30", "12:30:45", "12:30:45.123", "T23:59:59Z",
    # versions, semver and IP-like versions
    "v1.2.3", "1.2.3", "10.0.19041", "1.2.3.4.5", "10.0.19041.1", "2.0.0-rc.1+build.5", "3.11.4",
    "256.1.1.1", "1.2.3.999",
    # ordinary numbers, decimals, prices, percentages, coordinates
    "1234567", "3,000,000", "1 234", "3.14159265358", "$1,234,567.89", "€ 12.99", "99.5%",
    "+12.5%", "+40.71277600, -74.00601234", "-33.8688, 151.2093", "2024",
    # ranges, order numbers, ISBNs (decided: not phones)
    "1990-2020", "pp. 1234-1256", "pages 123-456, 789-1011", "2019-2020 2021-2022",
    "order 123456789", "Order #12345-67890", "ISBN 978-3-16-148410-0", "ISBN 0-306-40615-2",
    # card-length but Luhn-invalid, or not a payment-card prefix
    "4111111111111112", "4111 1111 1111 1112", "9111111111111111", "1234 5678 9012 3456",
    # IBAN: bad checksum, lowercase, unknown country, wrong length
    "DE89370400440532013001", "de89370400440532013000", "ZZ89370400440532013000",
    "DE8937040044053201300",
    # e-mail look-alikes, IPv6 look-alikes (MAC addresses decided: kept)
    "@handle", "a@b", "a@b.c", "name@localhost", "std::vector", "a::b", "00:1A:2B:3C:4D:5E",
    "Note: see below",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative_kept(text: str) -> None:
    assert redact(text) == (text, Counter())


def test_mixed_sentence_counts_and_places() -> None:
    text = ("Mail jo@example.com or ann@example.org, call +44 20 7946 0958 or (555) 123-4567; "
            "server 10.0.0.1 / 2001:db8::1 since 2024-01-15 (v1.2.3). Pay 4111 1111 1111 1111 "
            "or DE89 3704 0044 0532 0130 00 by 15.01.2024, total $1,234.50.")
    redacted, counts = redact(text)
    assert redacted == ("Mail [EMAIL] or [EMAIL], call [PHONE] or [PHONE]; server [IPV4] / [IPV6] "
                        "since 2024-01-15 (v1.2.3). Pay [CREDIT_CARD] or [IBAN] by 15.01.2024, total $1,234.50.")
    assert counts == Counter(EMAIL=2, PHONE=2, IPV4=1, IPV6=1, CREDIT_CARD=1, IBAN=1)


def test_validated_kinds_are_not_half_eaten_by_phone() -> None:
    assert redact("IBAN GB82WEST12345698765432 ABCD") == ("IBAN [IBAN] ABCD", Counter(IBAN=1))
    assert redact("card 5555-5555-5555-4444.")[0] == "card [CREDIT_CARD]."
    assert redact("id 4111111111111111@example.com")[0] == "id [EMAIL]"


def test_trailing_punctuation_kept() -> None:
    assert redact("at fe80::1.")[0] == "at [IPV6]."
    assert redact("host 2001:db8::1: down")[0] == "host [IPV6]: down"
    assert redact("write user@example.com.")[0] == "write [EMAIL]."


def test_redactor_accumulates() -> None:
    r = Redactor()
    assert r.redact("a@example.com") == "[EMAIL]"
    assert r.redact_many(["b@example.com 8.8.8.8", "nothing", "4111111111111111"]) == [
        "[EMAIL] [IPV4]", "nothing", "[CREDIT_CARD]"]
    assert r.counts == Counter(EMAIL=2, IPV4=1, CREDIT_CARD=1)


# -- properties -------------------------------------------------------------------------------------

_LOCAL = st.text(string.ascii_letters + string.digits + "_%+-", min_size=1, max_size=12)
emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    _LOCAL,
    st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True), min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if _pii._luhn(body + check):
            return body + check
    raise AssertionError("unreachable")


cards = st.builds(
    lambda first, rest, sep: _format_card(_luhn_complete(first + rest), sep),
    st.sampled_from("3456"),
    st.text("0123456789", min_size=14, max_size=14),
    st.sampled_from(["", " ", "-"]),
)


def _format_card(digits: str, sep: str) -> str:
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))


def _iban(country: str, bban: str) -> str:
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


ibans = st.sampled_from(sorted(_pii._IBAN_LENGTH.items())).flatmap(
    lambda item: st.builds(
        lambda bban, spaced: _space(_iban(item[0], bban), spaced),
        st.text(string.digits + string.ascii_uppercase, min_size=item[1] - 4, max_size=item[1] - 4),
        st.booleans(),
    )
)


def _space(iban: str, spaced: bool) -> str:
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if spaced else iban


_filler = st.text(string.ascii_letters + " ,.;!?()", max_size=15).map(lambda s: f" {s} ")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_filler, st.one_of(emails, cards, ibans)), min_size=1, max_size=4))
def test_generated_pii_never_leaks(parts: list[tuple[str, str]]) -> None:
    text = "".join(filler + item for filler, item in parts)
    redacted, counts = redact(text)
    for _, item in parts:
        assert item not in redacted
    assert sum(counts.values()) == len(parts)


_noise = st.text(string.digits + string.ascii_letters + " .:-+()@[]_", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_noise, emails, cards, ibans), max_size=5).map(" ".join))
def test_redact_is_idempotent(text: str) -> None:
    once, _ = redact(text)
    assert redact(once) == (once, Counter())
