"""The one exception tree of Hostmaster, mapped to HTTP in ``service.api.problems``.

    HostmasterError
    ├── RequestRejected            the client can fix it: 4xx, nothing changed
    │   ├── InvalidRequest         422, lists every violation with its field
    │   ├── NotFound               404
    │   ├── Unauthorized           401: no key, or not a key we know
    │   ├── Forbidden              403: the key may not do this, or not in this zone
    │   ├── RateLimited            429, with Retry-After
    │   ├── Conflict               409, names what it conflicts with
    │   └── PayloadTooLarge        413, the body passes the size limit
    ├── DependencyUnavailable      503: database or broker cannot be reached
    └── DnsError                   raised in workers while applying a request
        ├── TransientDnsError      timeout, connection refused, SERVFAIL: retried
        └── PermanentDnsError      NOTAUTH, REFUSED, NOTZONE, bad TSIG, not applied: failed now

Third-party exceptions (dnspython, pika, SQLAlchemy) are converted into these at the
boundary where they are caught, with ``raise Ours(...) from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One thing wrong with a request: where (a JSON path such as ``values[1]``) and why."""

    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class HostmasterError(Exception):
    """Base of every error Hostmaster raises on purpose."""

    code = "error"

    def __init__(self, detail: str, *, code: str | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s  # when sending the same again later may succeed
        if code is not None:
            self.code = code


class RequestRejected(HostmasterError):
    code = "rejected"


class InvalidRequest(RequestRejected):
    code = "invalid"

    def __init__(self, violations: list[Violation], detail: str | None = None) -> None:
        fields = ", ".join(v.field for v in violations)
        super().__init__(detail or f"the request is not valid: {fields}")
        self.violations = violations


class NotFound(RequestRejected):
    code = "not_found"


class Conflict(RequestRejected):
    code = "conflict"


class Unauthorized(RequestRejected):
    code = "unauthorized"


class Forbidden(RequestRejected):
    code = "forbidden"


class RateLimited(RequestRejected):
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)


class PayloadTooLarge(RequestRejected):
    code = "payload_too_large"


class DependencyUnavailable(HostmasterError):
    code = "unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 5, code: str | None = None) -> None:
        super().__init__(detail, code=code, retry_after_s=retry_after_s)


class DnsError(HostmasterError):
    code = "dns_error"


class TransientDnsError(DnsError):
    """Worth another try later: the server is down, slow or failing."""

    code = "dns_transient"


class PermanentDnsError(DnsError):
    """Another try gives the same answer: fail the request now with this reason."""

    code = "dns_permanent"
