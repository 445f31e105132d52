"""The machine's own limit: what a user's plain dnspython loop gets from the same BIND."""

from __future__ import annotations

import socket
import time

import dns.name
import dns.query
import dns.tsigkeyring
import dns.update


def _update(zone: str, key: str, secret: str) -> dns.update.UpdateMessage:
    return dns.update.UpdateMessage(
        zone,
        keyring=dns.tsigkeyring.from_text({key: secret}),
        keyname=dns.name.from_text(key),
        keyalgorithm="hmac-sha256",
    )


def single_updates_per_s(zone: str, key: str, secret: str, port: int, count: int) -> float:
    """One TSIG-signed UPDATE per record, sent one after the other, each on its own TCP connection."""
    started = time.perf_counter()
    for index in range(count):
        update = _update(zone, key, secret)
        update.replace(f"raw1-{index}.{zone}.", 300, "A", f"10.1.{index // 250}.{index % 250 + 1}")
        assert dns.query.tcp(update, "127.0.0.1", port=port, timeout=5).rcode() == 0
    return count / (time.perf_counter() - started)


def batched_records_per_s(zone: str, key: str, secret: str, port: int, count: int, per_update: int = 500) -> float:
    """The same kind of records, ``per_update`` to an UPDATE, over one TCP connection."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for first in range(0, count, per_update):
            update = _update(zone, key, secret)
            for index in range(first, min(first + per_update, count)):
                update.replace(f"raw2-{index}.{zone}.", 300, "A", f"10.2.{index // 250}.{index % 250 + 1}")
            assert dns.query.tcp(update, "127.0.0.1", port=port, timeout=10, sock=sock).rcode() == 0
    return count / (time.perf_counter() - started)
