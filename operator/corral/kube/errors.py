"""Errors of the API client, classified by the API server's Status (code, reason, causes).

Callers ask `exc.is_conflict`, `exc.is_namespace_terminating` ... and never read the message:
messages are for humans and change between Kubernetes versions; the reason and the causes are
API (`k8s.io/apimachinery/pkg/apis/meta/v1` StatusReason / CauseType).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The Status causes Corral looks for (`k8s.io/api/core/v1` and `meta/v1` CauseType values).
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"
"""Set by the NamespaceLifecycle admission plugin on a 403 Forbidden create into a namespace
whose deletion has started (`field: metadata.namespace`)."""

CONNECTION_ERROR = "ConnectionError"
TIMEOUT = "Timeout"


@dataclass(frozen=True)
class StatusCause:
    type: str
    message: str = ""
    field: str = ""


@dataclass(frozen=True)
class StatusDetails:
    name: str = ""
    group: str = ""
    kind: str = ""
    causes: tuple[StatusCause, ...] = ()
    retry_after_seconds: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> StatusDetails:
        if not isinstance(raw, dict):
            return cls()
        causes = tuple(
            StatusCause(
                type=str(c.get("reason") or ""),
                message=str(c.get("message") or ""),
                field=str(c.get("field") or ""),
            )
            for c in raw.get("causes") or []
            if isinstance(c, dict)
        )
        retry = raw.get("retryAfterSeconds")
        return cls(
            name=str(raw.get("name") or ""),
            group=str(raw.get("group") or ""),
            kind=str(raw.get("kind") or ""),
            causes=causes,
            retry_after_seconds=retry if isinstance(retry, int) else None,
        )


class ApiError(Exception):
    """A failed request. `status` is the HTTP code (0 when no answer came: connection refused,
    timeout), `reason` the Status reason (NotFound, Conflict, AlreadyExists, Expired, ...)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        details: StatusDetails | None = None,
        *,
        retry_after: float | None = None,
    ):
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or StatusDetails()
        self.retry_after = retry_after
        """Seconds the server asked the client to wait (Retry-After), if it did."""
        super().__init__(f"{status} {reason}: {message}")

    @classmethod
    def from_response(
        cls, status: int, http_reason: str, text: str, retry_after: float | None = None
    ) -> ApiError:
        """From the body of a non-2xx answer: a meta/v1 Status when the API server wrote it,
        anything else (a proxy's HTML page) otherwise."""
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return cls.from_status(body, status, http_reason or "", text[:500], retry_after)

    @classmethod
    def from_status(
        cls,
        body: dict[str, Any],
        status: int | None = None,
        default_reason: str = "",
        default_message: str = "",
        retry_after: float | None = None,
    ) -> ApiError:
        """From a meta/v1 Status object (also what an ERROR watch event carries)."""
        code = body.get("code")
        return cls(
            status if status is not None else (code if isinstance(code, int) else 0),
            str(body.get("reason") or default_reason),
            str(body.get("message") or default_message),
            StatusDetails.parse(body.get("details")),
            retry_after=retry_after,
        )

    def _is(self, reason: str, code: int) -> bool:
        # client-go's rule: the reason decides; the code only when the server gave no reason.
        if self.reason and self.reason != _HTTP_REASONS.get(self.status):
            return self.reason == reason
        return self.status == code

    def has_cause(self, cause_type: str) -> bool:
        return any(c.type == cause_type for c in self.details.causes)

    @property
    def is_not_found(self) -> bool:
        return self._is("NotFound", 404)

    @property
    def is_already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def is_conflict(self) -> bool:
        """A write refused because the object changed since it was read (resourceVersion)."""
        return self.status == 409 and self.reason in ("Conflict", "")

    @property
    def is_gone(self) -> bool:
        """410: the resourceVersion is too old to watch or list from (reason Expired or Gone)."""
        return self.status == 410 or self.reason in ("Expired", "Gone")

    @property
    def is_invalid(self) -> bool:
        return self._is("Invalid", 422)

    @property
    def is_forbidden(self) -> bool:
        return self._is("Forbidden", 403)

    @property
    def is_unauthorized(self) -> bool:
        return self._is("Unauthorized", 401)

    @property
    def is_too_many_requests(self) -> bool:
        return self._is("TooManyRequests", 429)

    @property
    def is_namespace_terminating(self) -> bool:
        """A create into a namespace being deleted: 403 Forbidden whose details.causes carry
        NamespaceTerminating (NamespaceLifecycle admission). Updates, patches and deletes in
        such a namespace are still allowed."""
        return self.status == 403 and self.has_cause(NAMESPACE_TERMINATING_CAUSE)

    @property
    def is_server_error(self) -> bool:
        return self.status >= 500 or self.reason in ("InternalError", "ServerTimeout")

    @property
    def no_answer(self) -> bool:
        """No HTTP answer came (connection refused or reset, timeout): the outcome is unknown."""
        return self.status == 0


class Fenced(ApiError):
    """A write refused by the client itself: this process may not write now (it is not, or no
    longer, the leader). Nothing was sent."""

    def __init__(self, method: str, path: str):
        super().__init__(0, "Fenced", f"{method} {path}: not the leader; write not sent")


_HTTP_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
"""HTTP reason phrases: an ApiError built from a non-Status body carries one of these, which
is no Status reason, so classification falls back to the code."""
