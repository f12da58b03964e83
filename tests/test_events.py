"""run.events: typed events keep the exact JSON shape of `apply --format json` (keys, order,
nulls, left-out fields), and read as the same lines of text. No database."""
from __future__ import annotations

import json

import pytest

from reconciler.app.apply import _lines, _Printer
from reconciler.core.kinds import Action
from reconciler.run import events as ev

# (event, the JSON object apply printed for it before events were typed: key order included)
SHAPES = [
    (ev.ChangeStart(Action.CREATE, "public", "orders", "orders_a_idx"),
     '{"event": "change_start", "action": "create", "schema": "public", "table": "orders", "index": "orders_a_idx"}'),
    (ev.Statement("DROP INDEX CONCURRENTLY public.x", 2),
     '{"event": "statement", "sql": "DROP INDEX CONCURRENTLY public.x", "attempt": 2}'),
    (ev.Retry("(planning)", 2, "canceling statement due to lock timeout", 0.31),
     '{"event": "retry", "sql": "(planning)", "attempt": 2, "error": "canceling statement due to lock timeout", '
     '"sleep_s": 0.31}'),
    (ev.Waiting(detail="another apply holds the lock: pid 7 (reconciler, from local socket, connected 3s ago)"),
     '{"event": "waiting", "detail": "another apply holds the lock: pid 7 (reconciler, from local socket, '
     'connected 3s ago)"}'),
    (ev.Waiting("i", "old transactions would hold up the build; waiting for them to end",
                (ev.Session(7, 12.5, "idle in transaction", "SELECT 1"),)),
     '{"event": "waiting", "index": "i", "detail": "old transactions would hold up the build; waiting for them to '
     'end", "sessions": [{"pid": 7, "age_s": 12.5, "state": "idle in transaction", "query": "SELECT 1"}]}'),
    (ev.Progress("i", "building index: scanning table", 1, 10, 0, 0, 0, 0, None, 0.1, None, 0.5),
     '{"event": "progress", "index": "i", "phase": "building index: scanning table", "blocks_done": 1, '
     '"blocks_total": 10, "tuples_done": 0, "tuples_total": 0, "lockers_done": 0, "lockers_total": 0, '
     '"waiting_for_pid": null, "fraction": 0.1, "eta_s": null, "elapsed_s": 0.5}'),
    (ev.Skip(sql="ALTER INDEX public.a RENAME TO b", detail="already renamed"),
     '{"event": "skip", "sql": "ALTER INDEX public.a RENAME TO b", "detail": "already renamed"}'),
    (ev.Skip(index="p1_a_idx", detail="p1: already attached"),
     '{"event": "skip", "index": "p1_a_idx", "detail": "p1: already attached"}'),
    (ev.Cleanup("i", "dropped the INVALID leftover of a failed build"),
     '{"event": "cleanup", "index": "i", "detail": "dropped the INVALID leftover of a failed build"}'),
    (ev.ChangeDone(Action.DROP, "i", 0.25, 0),
     '{"event": "change_done", "action": "drop", "index": "i", "seconds": 0.25, "size_bytes": 0}'),
    (ev.ChangeFailed("i", "boom"), '{"event": "change_failed", "index": "i", "error": "boom"}'),
    (ev.Info("dry run: nothing executed"), '{"event": "info", "detail": "dry run: nothing executed"}'),
]


@pytest.mark.parametrize("event, line", SHAPES, ids=[f"{e.kind}-{i}" for i, (e, _) in enumerate(SHAPES)])
def test_json_shape_is_kept(event, line):
    printed: list[str] = []
    _Printer("json", printed.append, tty=False)(event)
    assert printed == [line]
    assert list(json.loads(line)) == list(event.to_dict())


def test_every_event_kind_has_a_pinned_shape():
    assert {type(e) for e, _ in SHAPES} == set(ev.ALL)
    assert len({cls.kind for cls in ev.ALL}) == len(ev.ALL)


def test_events_are_values():
    assert ev.Statement("x", 1) == ev.Statement("x", 1)
    with pytest.raises(AttributeError):
        ev.Statement("x", 1).attempt = 2  # type: ignore[misc]


@pytest.mark.parametrize("event, lines", [
    (ev.ChangeStart(Action.REPLACE, "app", "t", "t_a_idx"), ["replace app.t_a_idx on t"]),
    (ev.Statement("CREATE INDEX CONCURRENTLY x ON t (a)", 1), ["  sql: CREATE INDEX CONCURRENTLY x ON t (a);"]),
    (ev.Statement("CREATE INDEX CONCURRENTLY x ON t (a)", 3),
     ["  sql: CREATE INDEX CONCURRENTLY x ON t (a);  (try 3)"]),
    (ev.Retry("S", 2, "canceling statement due to lock timeout", 0.4),
     ["  retry in 0.4s: canceling statement due to lock timeout"]),
    (ev.Waiting("i", "old transactions", (ev.Session(7, 12.5, "idle in transaction", "SELECT 1"),)),
     ["  waiting: old transactions", "    pid 7 (idle in transaction, 12.5s): SELECT 1"]),
    (ev.Cleanup("i", "dropped it"), ["  cleanup: dropped it (i)"]),
    (ev.Skip(index="p", detail="already attached"), ["  skip: already attached"]),
    (ev.ChangeDone(Action.CREATE, "i", 1.5, 8192), ["  done in 1.50s, 8,192 bytes"]),
    (ev.ChangeDone(Action.DROP, "i", 0.25, 0), ["  done in 0.25s"]),
    (ev.ChangeFailed("i", "boom"), ["  FAILED: boom"]),
    (ev.Info("Summary: 1 of 1 change(s) done."), ["Summary: 1 of 1 change(s) done."]),
])
def test_text_lines(event, lines):
    assert _lines(event) == lines


def test_text_progress_is_throttled_without_a_terminal():
    printed: list[str] = []
    p = _Printer("text", printed.append, tty=False)
    e = ev.Progress("i", "building index: scanning table", 5, 10, 0, 0, 0, 0, 42, 0.5, 3.0, 3.0)
    p(e)
    p(e)   # within 10 s of the last line: not printed again
    assert printed == ["  i: building index: scanning table [###############...............]  50.0% ETA 3s "
                       "waiting for pid 42"]
