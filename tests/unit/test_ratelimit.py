"""The per-client token bucket: a batch of N writes takes N tokens, all or none."""

from __future__ import annotations

from service.api.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_cost_is_taken_whole_or_not_at_all() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=10, burst=20, clock=clock)

    assert buckets.take("c", 15) == 0
    wait = buckets.take("c", 10)  # 5 left: refused, and nothing taken
    assert wait == 0.5
    clock.now = 0.5
    assert buckets.take("c", 10) == 0  # 5 + 0.5 s x 10 a second
    assert buckets.take("c") > 0


def test_clients_have_buckets_of_their_own() -> None:
    buckets = TokenBuckets(rate=1, burst=1, clock=Clock())

    assert buckets.take("a") == 0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0


def test_the_buckets_stay_bounded_however_many_addresses_call() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=5, clock=clock, max_names=100)

    for index in range(50_000):  # a guesser from ever new addresses, each limited while it lasts
        buckets.take(f"unauthenticated 10.0.{index // 256}.{index % 256}")
        assert len(buckets) <= 100


def test_a_flood_of_new_names_does_not_free_a_name_that_keeps_calling() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=0.1, burst=5, clock=clock, max_names=100)
    assert buckets.take("busy", 5) == 0  # drained

    for index in range(1_000):  # one-off callers, faster than their buckets refill
        clock.now += 0.01
        buckets.take(f"new {index}")
        if index % 10 == 0:
            assert buckets.take("busy") > 0, index  # still limited: the idlest go first, not the busiest
    assert len(buckets) <= 100
