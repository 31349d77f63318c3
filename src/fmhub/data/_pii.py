"""PII redaction for ``fmhub data import --redact-pii``.

Finds e-mail addresses, phone numbers, IPv4/IPv6 addresses, payment card numbers and IBANs in free
text and replaces each with a typed placeholder (``[EMAIL]``, ``[PHONE]`` ...), so a dataset can be
shared without the personal data while keeping the sentence shape a model learns from.

Precision choices (a redactor that eats every number ruins the dataset; one that leaks is useless):

- E-mail runs first (its local part may hold digits), then the kinds that carry a checksum (IBAN:
  country length + mod-97; card: Luhn), so a card or an IBAN is never half-eaten by the looser phone
  rule; then IPv6, IPv4 and phone last.
- **Cards**: 13-19 digits, either unbroken or in the usual groups (4-4-4-4[-1..3], 4-4-4-1..4,
  4-6-4/5) with one consistent separator (space or dash); Luhn-valid and first digit 2-6 (the
  payment-card industry identifiers: Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay 6).
  Without the prefix rule one 13+ digit barcode or order number in ten would pass Luhn by chance.
- **IBAN**: uppercase only (``de89...`` is not matched), compact or spaced every 4, country in the
  length table below, mod-97 == 1. Unknown countries are not matched.
- **Phone**: at least 9 digits (and at most 15, E.164) in one of three shapes: international
  (``+CC ...``), North American (``(555) 123-4567``, ``555-123-4567``, ``1-800-555-0199``) or
  national with a trunk ``0`` and separators (``030 1234567``, ``06 12 34 56 78``). A bare digit run
  is a phone only after ``+``: ``123456789`` is more often an order number or ID than a phone, and
  ISBNs (``978-3-16-148410-0``: single-digit groups) are deliberately *not* phones. Dates, times,
  versions, decimals, prices, coordinates, percentages and page/year ranges are rejected by shape.
- **IPv4**: exactly four dotted octets 0-255 without leading zeros, not inside a longer dotted run
  (``1.2.3.4.5``, ``10.0.19041.1``). A four-part version ``1.2.3.4`` is indistinguishable and redacted.
- **IPv6**: validated by :mod:`ipaddress` (full, ``::``-compressed, embedded IPv4); it must contain a
  decimal digit so C++-like ``a::b`` survives. Times (``12:30:45``) and MAC addresses
  (``00:1A:2B:3C:4D:5E``) are not valid IPv6 and are kept: a MAC is not one of :data:`PII_KINDS`.

:func:`redact` applies the rules until the text stops changing, so ``redact(redact(x)) ==
redact(x)`` holds by construction (a replacement can, rarely, join its neighbours into a new match).
It terminates: every replacement strictly lowers the count of digits, ``@`` and ``:`` in the text.

Example::

    >>> redact("mail jo@example.com or call +44 20 7946 0958")
    ('mail [EMAIL] or call [PHONE]', Counter({'EMAIL': 1, 'PHONE': 1}))
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable

__all__ = ["PII_KINDS", "redact", "Redactor"]

PII_KINDS = ("EMAIL", "PHONE", "IPV4", "IPV6", "CREDIT_CARD", "IBAN")

# IBAN length per country (SWIFT IBAN registry). A country outside the table is not matched: an
# uppercase code + digits run is far more often a product or part number than an exotic IBAN.
_IBAN_LENGTH = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

# -- patterns (compiled once at import: re.compile is cheap, and every text reuses them) -----------

_EMAIL = re.compile(
    # Local part: RFC 5322 "atoms" minus the quoting and rare punctuation that would make quotes or
    # slashes in prose part of an address. The look-behind stops a match from starting mid-token.
    r"(?<![\w.%+-])[\w%+-]+(?:\.[\w%+-]+)*"
    # Domain: labels of letters/digits/hyphens and an alphabetic TLD of 2+ letters, so "a@b" and
    # "a@b.c" are not addresses and "@handle" has no local part.
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-])"
)

# Four characters per group with an optional single space; the exact length is checked per country.
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")

_CARD = re.compile(
    r"(?<![0-9])(?<![0-9][.,-])(?:"
    r"[0-9]{13,19}"
    r"|[0-9]{4}(?P<s>[ -])[0-9]{4}(?P=s)[0-9]{4}(?P=s)[0-9]{1,4}(?:(?P=s)[0-9]{1,3})?"
    r"|[0-9]{4}(?P<t>[ -])[0-9]{6}(?P=t)[0-9]{4,5}"
    r")(?![0-9])(?![.,-][0-9])"
)

# A maximal run of IPv6 characters holding at least two colons; ipaddress decides. Possessive so a
# run glued to a word fails outright instead of backtracking into a shorter (wrong) address.
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:)[0-9A-Fa-f:.]++(?!\w)")

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w)(?!\.[0-9])")

_SEP = r"[ .-]"
_PHONE = re.compile(
    r"(?:"
    # International: +CC, an optional "(0)" trunk or "(area)", then digit groups.
    rf"(?<![\w+])\+[0-9]{{1,3}}(?:{_SEP}?\([0-9]{{1,4}}\))?(?:{_SEP}?[0-9]{{1,8}})++"
    # North American: optional leading 1, area code 2-9xx (bracketed or followed by a separator).
    rf"|(?<![\w.,/+])(?<![0-9]-)(?:1{_SEP})?(?:\([2-9][0-9]{{2}}\){_SEP}?|[2-9][0-9]{{2}}{_SEP})"
    rf"[0-9]{{3}}{_SEP}[0-9]{{4}}"
    # National with a trunk 0 and at least one separator (European style).
    rf"|(?<![\w.,/+])(?<![0-9]-)0[0-9]{{1,4}}(?:{_SEP}[0-9]{{2,8}})++"
    r")(?!\w)(?![.,/:-][0-9])"
)

# Dates with a 4-digit year, which joined with a neighbouring number reach phone length
# ("01.02.2024 12"). Two-digit-year dates are too short to matter and look like "45.67.89" in phones.
_DATE = re.compile(r"(?:19|20)[0-9]{2}[./-][0-9]{1,2}[./-][0-9]{1,2}|[0-9]{1,2}[./-][0-9]{1,2}[./-](?:19|20)[0-9]{2}(?![0-9])")
_PHONE_SEP = re.compile(r"[ .()-]+")

# Any text without a digit or '@' holds none of the kinds: one scan skips most prose.
_TRIGGER = re.compile(r"[0-9@]")


# -- validators ---------------------------------------------------------------------------------


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_valid(compact: str) -> bool:
    if _IBAN_LENGTH.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    # int(ch, 36) maps 0-9 to themselves and A-Z to 10-35, the ISO 13616 letter values.
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _phone_valid(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if "(0)" in candidate:
        digits -= 1  # "+49 (0)30 ..." — the bracketed trunk 0 is not dialled internationally
    if not 9 <= digits <= 15:
        return False
    if _DATE.search(candidate):
        return False
    groups = [g for g in _PHONE_SEP.split(candidate.lstrip("+")) if g]
    seps = set(_PHONE_SEP.findall(candidate))
    if seps == {"."} and len(groups) == 2:
        return False  # a decimal: "+40.71277600" is a coordinate, not a number to dial
    # Single-digit groups mark ISBNs, versions and enumerations; phones only have them up front
    # (country code "+1", NANP trunk "1-", the French area digit in "+33 1 23 45 67 89").
    return all(len(g) > 1 for g in groups[2:])


# -- replacement --------------------------------------------------------------------------------


def _sub_email(m: re.Match[str], counts: Counter[str]) -> str:
    counts["EMAIL"] += 1
    return "[EMAIL]"


def _sub_iban(m: re.Match[str], counts: Counter[str]) -> str:
    text = m.group()
    length = _IBAN_LENGTH.get(text[:2])
    if length is None:
        return text
    # The regex may run on into a following 4-character word ("... 3000 ABCD"): cut at the
    # country's length, which must fall at the end of a group, and keep the rest as text.
    seen = 0
    for end, ch in enumerate(text, 1):
        if ch != " ":
            seen += 1
            if seen == length:
                break
    else:
        return text
    if end < len(text) and text[end] != " ":
        return text
    if not _iban_valid(text[:end].replace(" ", "")):
        return text
    counts["IBAN"] += 1
    return "[IBAN]" + text[end:]


def _sub_card(m: re.Match[str], counts: Counter[str]) -> str:
    text = m.group()
    digits = text.replace(" ", "").replace("-", "")
    if digits[0] not in "23456" or not _luhn(digits):
        return text
    counts["CREDIT_CARD"] += 1
    return "[CREDIT_CARD]"


def _sub_ipv6(m: re.Match[str], counts: Counter[str]) -> str:
    text = m.group()
    # Sentence punctuation sticks to the run: "at fe80::1." and "fe80::1: down".
    core = text.rstrip(".")
    if core.endswith(":") and not core.endswith("::"):
        core = core[:-1]
    if not any(ch.isdigit() for ch in core):
        return text
    try:
        ipaddress.IPv6Address(core)
    except ValueError:
        return text
    counts["IPV6"] += 1
    return "[IPV6]" + text[len(core):]


def _sub_ipv4(m: re.Match[str], counts: Counter[str]) -> str:
    counts["IPV4"] += 1
    return "[IPV4]"


def _sub_phone(m: re.Match[str], counts: Counter[str]) -> str:
    text = m.group()
    if not _phone_valid(text):
        return text
    counts["PHONE"] += 1
    return "[PHONE]"


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], Counter[str]], str], Callable[[str], bool]]

# E-mail first: it is delimited by '@' and a TLD, and its local part may hold digits a card or phone
# rule would otherwise cut out of it, leaving the rest of the address behind. Then the validated
# kinds, the phone rule last. Each rule has a cheap substring pre-check.
_RULES: tuple[_Rule, ...] = (
    (_EMAIL, _sub_email, lambda t: "@" in t),
    (_IBAN, _sub_iban, lambda t: True),
    (_CARD, _sub_card, lambda t: True),
    (_IPV6, _sub_ipv6, lambda t: ":" in t),
    (_IPV4, _sub_ipv4, lambda t: "." in t),
    (_PHONE, _sub_phone, lambda t: True),
)


def _redact_into(text: str, counts: Counter[str]) -> str:
    if not _TRIGGER.search(text):
        return text
    while True:
        before = text
        for pattern, sub, precheck in _RULES:
            if precheck(text):
                text = pattern.sub(lambda m, sub=sub: sub(m, counts), text)
        if text == before:
            return text


def redact(text: str) -> tuple[str, Counter[str]]:
    """Replace every e-mail, phone, IP address, card number and IBAN in ``text`` by a placeholder.

    Returns:
        The redacted text and how many items of each kind (keys from :data:`PII_KINDS`) were replaced.

    Example::

        >>> redact("card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00")[0]
        'card [CREDIT_CARD], IBAN [IBAN]'
    """
    counts: Counter[str] = Counter()
    return _redact_into(text, counts), counts


class Redactor:
    """Redacts many texts (a whole dataset) and keeps the running count per kind in :attr:`counts`.

    Example::

        >>> r = Redactor()
        >>> r.redact_many(["a@example.com", "b@example.org", "nothing here"])
        ['[EMAIL]', '[EMAIL]', 'nothing here']
        >>> r.counts["EMAIL"]
        2
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        """Redact one text and add its findings to :attr:`counts`."""
        return _redact_into(text, self.counts)

    def redact_many(self, texts: Iterable[str]) -> list[str]:
        """Redact each text in order; the counts accumulate over all of them."""
        counts = self.counts
        return [_redact_into(text, counts) for text in texts]
