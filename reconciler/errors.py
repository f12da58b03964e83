"""The user-facing error types: one message, an optional hint, nothing else.

Every failure a user can cause (bad spec, bad SQL fragment, unreachable database, a stale plan)
is raised as a ReconcilerError and printed by the CLI as one line (plus the hint), exit 1.
This module imports nothing of ours.
"""
from __future__ import annotations


class ReconcilerError(Exception):
    """An error the user can act on. `str()` is the one-line message."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class SpecError(ReconcilerError):
    """The spec file is malformed: the message names file:line and the field."""


class SQLFragmentError(ReconcilerError):
    """A SQL fragment (expression, predicate) does not parse or is not allowed."""


class DatabaseError(ReconcilerError):
    """The database refused something or could not be reached."""


class StalePlanError(ReconcilerError):
    """A saved plan no longer matches the live state it was made from."""


class ApplyError(ReconcilerError):
    """A change could not be carried out; the message says what was done and what was not."""
