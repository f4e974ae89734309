"""User-facing errors.

Every message here is safe to print: it never holds a password, SQL text or a
driver's raw exception text unless that text was scrubbed first.  Each class
carries the process exit code the CLI uses and the HTTP status the API uses,
so both adapters agree on what an error means.

Exit codes (documented in the README):

====  =====================================================================
0     success
1     unexpected internal error
2     invalid input (validation, value too long, bad file, bad option)
3     database unavailable or misconfigured (unreachable, login failed,
      table missing or not in dmitems' shape, unknown URL scheme, driver missing, connection lost)
4     not found
5     version conflict (optimistic concurrency)
6     rejected by a database constraint (integrity)
7     a benchmark threshold (``--fail-if``) was broken
130   interrupted (Ctrl-C); nothing half-written
====  =====================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# SQLAlchemy's asyncpg adapter words a driver error as "<class 'asyncpg.exceptions.X'>: text".
# Messages are written for users: the class name goes, the text stays.
_CLASS_PREFIX = re.compile(r"<class '[\w.]+'>:\s*")


class DmitemsError(Exception):
    """Base class: a problem with a message that is safe to show a user."""

    exit_code = 1
    http_status = 500
    title = "Internal error"

    def __init__(self, message: str) -> None:
        message = without_class_names(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(DmitemsError):
    exit_code = 2
    http_status = 422
    title = "Invalid input"


class ValidationFailed(InvalidInput):
    """Input failed validation; ``problems`` lists (location, reason) pairs."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ValueTooLong(InvalidInput):
    title = "Value too long"


class DatabaseUnavailable(DmitemsError):
    exit_code = 3
    http_status = 503
    title = "Database unavailable"


class DatabaseUnreachable(DatabaseUnavailable):
    pass


class LoginFailed(DatabaseUnavailable):
    title = "Database login failed"


class ConnectionLost(DatabaseUnavailable):
    title = "Database connection lost"


class SchemaMissing(DatabaseUnavailable):
    title = "Database schema missing"


class SchemaMismatch(SchemaMissing):
    """The table is there but not in the shape dmitems needs; ``differences``, one line each."""

    title = "Database schema mismatch"

    def __init__(self, message: str, differences: list[str] | None = None) -> None:
        super().__init__(message)
        self.differences = differences or []


class UnsupportedDatabase(DatabaseUnavailable):
    """Unknown URL scheme, or the driver for it is not installed."""

    title = "Unsupported database URL"


class NotFound(DmitemsError):
    exit_code = 4
    http_status = 404
    title = "Not found"


class VersionConflict(DmitemsError):
    exit_code = 5
    http_status = 412
    title = "Version conflict"

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class IntegrityViolation(DmitemsError):
    exit_code = 6
    http_status = 409
    title = "Constraint violation"


class ThresholdFailed(DmitemsError):
    exit_code = 7
    title = "Threshold broken"


class Interrupted(DmitemsError):
    exit_code = 130
    title = "Interrupted"


def without_class_names(text: str) -> str:
    """``text`` without the ``<class '...'>:`` prefixes drivers put before their messages."""
    return _CLASS_PREFIX.sub("", text)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
