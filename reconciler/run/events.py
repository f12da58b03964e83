"""What apply reports while it runs: one frozen dataclass per event, handed to an `Emit` callback.

`apply --format json` prints each event as one JSON object per line, ``{"event": KIND, ...}``
with the fields in the order declared here; a field marked `optional` is left out when it is
None (the others are always present, null included). That shape is a public interface,
documented in docs/events.md (generated from this module by `python scripts/gendocs.py`) and
pinned by tests: add fields at the end, never rename one. Pure.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ClassVar


def about(text: str, *, optional: bool = False, default: Any = MISSING) -> Any:
    """A field with its documentation; an `optional` one defaults to None and is left out of
    the JSON object when it is None."""
    return field(default=None if optional else default, metadata={"doc": text, "optional": optional})


@dataclass(frozen=True)
class Event:
    """Base of every event: `kind` is the value of the "event" key."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("optional"):
                continue
            out[f.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Event):
        return {k: v for k, v in value.to_dict().items() if k != "event"}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


Emit = Callable[[Event], None]


def ignore(event: Event) -> None:
    """An `Emit` that drops every event."""


@dataclass(frozen=True)
class ChangeStart(Event):
    """A change of the plan begins."""

    kind: ClassVar[str] = "change_start"
    action: str = about("create, drop, replace, rename or rebuild")
    schema: str = about("the index's schema")
    table: str = about("its table")
    index: str = about("the index name the spec wants (for a drop: the one dropped)")


@dataclass(frozen=True)
class Statement(Event):
    """A statement is sent (each try of it)."""

    kind: ClassVar[str] = "statement"
    sql: str = about("the statement, as sent")
    attempt: int = about("1 for the first try")


@dataclass(frozen=True)
class Retry(Event):
    """A statement failed on a lock timeout and will be tried again after a jittered backoff."""

    kind: ClassVar[str] = "retry"
    sql: str = about('the statement, or "(planning)" for the catalog reads before the plan')
    attempt: int = about("the number of the coming try")
    error: str = about("the server's message")
    sleep_s: float = about("the jittered backoff before the coming try")


@dataclass(frozen=True)
class Session:
    """A session a build would wait for (an old transaction)."""

    pid: int = about("its backend pid (pg_terminate_backend ends it)")
    age_s: float = about("the age of its transaction, in seconds")
    state: str = about('pg_stat_activity.state, e.g. "idle in transaction"')
    query: str = about("its last query, cut at 120 characters")


@dataclass(frozen=True)
class Waiting(Event):
    """apply waits for something another session holds: a transaction a concurrent build waits
    for (writers before the build, old snapshots before it is valid), or the advisory lock of
    another apply. Reported when the wait begins and again whenever what it waits for changes."""

    kind: ClassVar[str] = "waiting"
    index: str | None = about("the index whose build waits", optional=True)
    detail: str = about("what apply waits for (the build's phase, or who holds the apply lock)", default="")
    sessions: tuple[Session, ...] | None = about("the transactions waited for", optional=True)


@dataclass(frozen=True)
class Progress(Event):
    """A concurrent build's progress (pg_stat_progress_create_index), every second or so."""

    kind: ClassVar[str] = "progress"
    index: str = about("the index being built")
    phase: str = about('the build\'s phase, e.g. "building index: scanning table"')
    blocks_done: int = about("pg_stat_progress_create_index.blocks_done")
    blocks_total: int = about("... blocks_total")
    tuples_done: int = about("... tuples_done")
    tuples_total: int = about("... tuples_total")
    lockers_done: int = about("... lockers_done (sessions waited for so far)")
    lockers_total: int = about("... lockers_total")
    waiting_for_pid: int | None = about("the session the build waits for, if any")
    fraction: float | None = about("done so far (0..1), from blocks, else tuples")
    eta_s: float | None = about("estimated seconds left, once 1 % is done")
    elapsed_s: float = about("seconds since the build started")


@dataclass(frozen=True)
class Skip(Event):
    """A step is already done (a resumed run): nothing sent for it."""

    kind: ClassVar[str] = "skip"
    index: str | None = about("the partition index already attached", optional=True)
    sql: str | None = about("the statement not sent (a rename already done)", optional=True)
    detail: str = about("why nothing was sent", default="")


@dataclass(frozen=True)
class Cleanup(Event):
    """apply removed what a failed or interrupted statement left behind (an INVALID index)."""

    kind: ClassVar[str] = "cleanup"
    index: str = about("the index removed")
    detail: str = about("what was removed and why")


@dataclass(frozen=True)
class ChangeDone(Event):
    """A change is carried out and its post-condition holds."""

    kind: ClassVar[str] = "change_done"
    action: str = about("as in change_start")
    index: str = about("as in change_start")
    seconds: float = about("how long the change took")
    size_bytes: int = about("the index's size after the change (0 for a drop)")


@dataclass(frozen=True)
class ChangeFailed(Event):
    """A change failed; apply stops after it (the summary follows)."""

    kind: ClassVar[str] = "change_failed"
    index: str = about("as in change_start")
    error: str = about("the one-line error apply exits with")


@dataclass(frozen=True)
class Info(Event):
    """Anything else worth a line: the summary, a warning, a dry run, waiting for builds."""

    kind: ClassVar[str] = "info"
    detail: str = about("the text (may span lines: the summary)")


ALL: tuple[type[Event], ...] = (ChangeStart, Statement, Retry, Waiting, Progress, Skip, Cleanup, ChangeDone,
                                ChangeFailed, Info)
