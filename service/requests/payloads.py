"""Request bodies: parsed strictly, before any of their content is trusted or stored.

JSON as the RFC 8259 says it (no NaN or Infinity, which PostgreSQL's JSONB refuses too),
nested at most ``MAX_DEPTH`` deep, and made storable: PostgreSQL text refuses NUL and lone
surrogates, so those are written as escapes in the stored copy.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from service.core.errors import InvalidRequest, Violation

MAX_DEPTH = 32
UNPARSED_PREVIEW = 2048


def parse_json_body(body: bytes) -> Any:
    if not body.strip():
        raise InvalidRequest([Violation("body", "is empty; send a JSON object")])
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest([Violation("body", f"is not valid JSON: {_short(str(exc))}")]) from None
    if _depth(value) > MAX_DEPTH:
        raise InvalidRequest([Violation("body", f"is nested deeper than {MAX_DEPTH} levels")])
    return value


KEPT_OF_REFUSED = 4096  # octets of a refused body the tracker keeps whole; a longer one is cut


def kept_of_refused(payload: dict[str, Any]) -> dict[str, Any] | None:
    """What the tracker keeps of a refused request's body when it is longer than
    KEPT_OF_REFUSED octets as JSON: its size, its SHA-256 and its start; None keeps it whole.
    A refusal changed nothing, so megabytes of it would only fill the table."""
    if "unparsed" in payload and len(payload) == 1:
        return None  # kept as its start already
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="backslashreplace")
    if len(text) <= KEPT_OF_REFUSED:
        return None
    return {
        "truncated": True,
        "size": len(text),
        "sha256": hashlib.sha256(text).hexdigest(),
        "start": text[:UNPARSED_PREVIEW].decode("utf-8", errors="ignore"),
    }


def unparsed(body: bytes) -> dict[str, Any]:
    """What the tracker keeps of a body that is not JSON: its start, as text."""
    return {"unparsed": body[:UNPARSED_PREVIEW].decode("utf-8", errors="replace")}


def storable(value: Any) -> Any:
    """``value`` with NUL and lone surrogates written as ``\\uXXXX`` text, which PostgreSQL accepts."""
    if isinstance(value, str):
        return "".join(_escape(ch) for ch in value) if _needs_escape(value) else value
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def _needs_escape(text: str) -> bool:
    return any(ch == "\x00" or "\ud800" <= ch <= "\udfff" for ch in text)


def _escape(ch: str) -> str:
    return f"\\u{ord(ch):04x}" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # 1e999: a JSON number no database or DNS field can hold
        raise ValueError(f"{text[:20]} is too large a number")
    return number


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
