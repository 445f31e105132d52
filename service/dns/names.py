"""Domain names as Hostmaster stores them: absolute, lower case, with the trailing dot.

Rules (RFC 1035 §2.3.1 and §2.3.4, RFC 1123 §2.1, RFC 2181 §11): a label is 1 to 63
octets of letters, digits and hyphens, neither starting nor ending with a hyphen; a
name is at most 253 characters without its trailing dot. Underscore labels
(``_acme-challenge``, ``_sip._tcp``) are allowed only where the caller says so, and a
wildcard only as the whole leftmost label.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63

# Types whose owner names may have underscore labels: _acme-challenge TXT, _dmarc CNAME,
# _sip._tcp SRV (RFC 8552). Other owners are host names.
UNDERSCORE_OWNER_TYPES = frozenset({"TXT", "CNAME", "SRV"})

_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_UNDERSCORE_LABEL = re.compile(r"^_[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class BadName(ValueError):
    """The text is not a name we accept; the message says why in words a person reads."""


def normalize_name(text: str, *, allow_underscore: bool = False, allow_wildcard: bool = False) -> str:
    """Return ``text`` as an absolute lower-case name with a trailing dot, or raise BadName."""
    if not isinstance(text, str):
        raise BadName("must be a string")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise BadName("must not contain control characters")
    if not text.isascii():
        raise BadName("must be ASCII; write internationalised names in their A-label (xn--) form")
    name = text.strip().lower()
    if name != text.lower():
        raise BadName("must not have leading or trailing spaces")
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise BadName("must not be empty or the root")
    if len(name) > MAX_NAME_LENGTH:
        raise BadName(f"is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}")
    labels = name.split(".")
    for index, label in enumerate(labels):
        _check_label(label, index, allow_underscore=allow_underscore, allow_wildcard=allow_wildcard)
    return name + "."


def _check_label(label: str, index: int, *, allow_underscore: bool, allow_wildcard: bool) -> None:
    if not label:
        raise BadName("has an empty label (two dots in a row, or a leading dot)")
    if len(label) > MAX_LABEL_LENGTH:
        raise BadName(f"has a label of {len(label)} characters; the limit is {MAX_LABEL_LENGTH}")
    if label == "*":
        if index != 0 or not allow_wildcard:
            raise BadName("may have a wildcard '*' only as its whole leftmost label")
        return
    if _LDH_LABEL.fullmatch(label):
        return
    if label.startswith("_"):
        if not allow_underscore:
            raise BadName(f"has the label {shown(label)}: underscore labels are not allowed for this record type")
        if _UNDERSCORE_LABEL.fullmatch(label):
            return
    raise BadName(
        f"has the label {shown(label)}: use letters, digits and hyphens, not starting or ending with a hyphen"
    )


def shown(text: object, limit: int = 80) -> str:
    """``repr(text)``, cut short so that an error message never repeats a huge input."""
    shown_text = repr(text)
    return shown_text if len(shown_text) <= limit else shown_text[: limit - 4] + "…" + shown_text[-3:]


def is_within(name: str, zone: str) -> bool:
    """True when absolute ``name`` is ``zone`` itself or below it."""
    return name == zone or name.endswith("." + zone)
