"""The daemon's error hierarchy; ``code`` and ``status`` become the JSON error on the wire."""

from __future__ import annotations


class ApiError(Exception):
    """An error a client caused or must know about: ``{"error": {"code", "message"}}``."""

    status = 500
    code = "internal"
    retry_after_s: int | None = None  # sent as Retry-After: when to try again

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class ShuttingDown(Unavailable):
    """A request that came after a graceful shutdown stopped starting any."""

    code, retry_after_s = "shutting_down", 1


class Busy(Unavailable):
    """Bulk work refused while its queue is full, so interactive requests stay fast."""

    code, retry_after_s = "busy", 1


class InsufficientStorage(ApiError):
    """The disk refuses writes (full, over quota, read-only): reads and search go on."""

    status, code = 507, "disk_full"


class StartRefused(Exception):
    """The daemon cannot start and a restart will not help until the user acts; its
    ``exit_code`` is one the service units do not restart."""

    exit_code = 8

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.code = reason  # "disk_full" or "read_only"
