"""The hazard catalogue: every code a plan can raise, what it means, why it matters, how to allow
it, and whether it stops `apply`. One entry per code, and nothing else to edit: `--allow-hazard`
checks against it, `docs/hazards.md` is generated from it (`python scripts/gendocs.py`).

Codes are stable SCREAMING_SNAKE strings: users type them in `--allow-hazard`, CI greps for
them. Pure: no database, no click.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import ReconcilerError
from .kinds import Kind
from .suggest import did_you_mean


class HazardCode(Kind):
    """A hazard code and its catalogue entry (`meaning`, `why`, `blocking`, `allow`).

    To add a code, add one member here: ``NAME = ("NAME", meaning, why, blocking)``.
    """

    meaning: str
    why: str
    blocking: bool

    def __new__(cls, code: str, meaning: str, why: str, blocking: bool = False):
        member = str.__new__(cls, code)
        member._value_ = code
        member.meaning, member.why, member.blocking = meaning, why, blocking
        return member

    @property
    def allow(self) -> str:
        """How a reviewer lets `apply` go ahead despite this hazard."""
        if self.blocking:
            return f"`apply` stops unless run with `--allow-hazard {self.value}`"
        return "never stops `apply`: shown so that a reviewer knows"

    INDEX_BUILD = (
        "INDEX_BUILD",
        "apply builds an index with CREATE INDEX CONCURRENTLY (a create, a replace, or the rebuild of "
        "an INVALID index)",
        "no write waits on the table, but the build scans it twice, competes for I/O and "
        "maintenance_work_mem, and first waits for every transaction older than itself; on a large "
        "table it takes minutes to hours")
    UNIQUE_BUILD_MAY_FAIL = (
        "UNIQUE_BUILD_MAY_FAIL",
        "the index to build is UNIQUE",
        "a UNIQUE build finds duplicate keys only after its full scan, then fails and leaves an "
        "INVALID index behind; apply looks for duplicates first and stops with a sample, but rows "
        "written during the build can still make it fail")
    PARTITIONED_BUILD = (
        "PARTITIONED_BUILD",
        "the table is partitioned: CREATE INDEX ON ONLY the parent, each partition CONCURRENTLY, "
        "then ATTACH PARTITION",
        "CONCURRENTLY is impossible on a partitioned parent; the parent index stays INVALID (unused "
        "by queries) until the last partition is attached, and the whole takes as long as every "
        "partition's build; an interrupted apply resumes per partition")
    ACQUIRES_ACCESS_EXCLUSIVE_LOCK = (
        "ACQUIRES_ACCESS_EXCLUSIVE_LOCK",
        "a partitioned index is dropped with a plain DROP INDEX (PostgreSQL refuses CONCURRENTLY "
        "there), which takes ACCESS EXCLUSIVE on the table tree",
        "while the DROP waits for its lock every later query on those tables queues behind it; the "
        "wait is bounded by --lock-timeout and retried, the drop itself is instant")
    INDEX_DROPPED = (
        "INDEX_DROPPED",
        "apply drops an index: not in the spec (manage.prune) or the leftover of an interrupted "
        "replace",
        "queries that read through it may become slower, and building it again takes as long as "
        "any build of that size")
    DROPS_USED_INDEX = (
        "DROPS_USED_INDEX",
        "the index to drop was scanned since the statistics were last reset (pg_stat_user_indexes."
        "idx_scan > 0 on this server)",
        "something reads through it: after the drop those queries may fall back to sequential "
        "scans; scans on standbys are not counted here, so check them too",
        True)
    QUERY_REGRESSION = (
        "QUERY_REGRESSION",
        "a query of the spec gets worse after the plan's changes (simulated with HypoPG or on a "
        "throwaway database): it stops using an index its `uses` lists, crosses its `budget_cost`, "
        "or its estimated cost grows by more than half (and by 100 or more); or a drop that cannot be "
        "simulated removes an index it uses now",
        "the application's query slows down on the day of the deploy; estimates come from the "
        "database's statistics, so plan against production (or a replica) for numbers that mean "
        "something (docs/queries.md)",
        True)


@dataclass(frozen=True)
class Hazard:
    """One hazard of one change: its catalogue code and what it means for this change."""

    code: HazardCode
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", HazardCode.parse(self.code))

    @property
    def blocking(self) -> bool:
        """Blocking hazards stop `apply` unless allowed (`--allow-hazard CODE`)."""
        return self.code.blocking

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "blocking": self.blocking}


def parse_allowed(codes: Iterable[str], flag: str = "--allow-hazard") -> frozenset[HazardCode]:
    """The codes a user allowed, checked against the catalogue: a typo is an error listing the
    valid codes, never a hazard silently left blocking.

    >>> sorted(parse_allowed(["drops_used_index"]))
    [<HazardCode.DROPS_USED_INDEX: 'DROPS_USED_INDEX'>]
    """
    allowed = set()
    valid = [c.value for c in HazardCode]
    for raw in codes:
        code = str(raw).strip().upper()
        if code not in valid:
            guess = did_you_mean(code, valid, quote="")
            raise ReconcilerError(f"{flag}: unknown hazard code {raw!r}{guess}; valid codes: {', '.join(valid)}",
                                  "docs/hazards.md says what each code means")
        allowed.add(HazardCode(code))
    return frozenset(allowed)
