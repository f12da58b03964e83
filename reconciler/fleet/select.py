"""Which targets a run covers: `--target GLOB` (repeatable, a union), `--label KEY=GLOB` and
`--label KEY!=GLOB` (repeatable, all must hold), then `--shard K/N` (a deterministic slice).

Sharding sorts the selected targets by name and deals them out round-robin: shard K of N gets
the targets at positions K-1, K-1+N, ... So N machines (a GitHub Actions matrix, a Kubernetes
Indexed Job) together cover every selected target exactly once, and each shard's size differs
from another's by at most one. Pure.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import ReconcilerError
from .targets import LABEL_KEY, Target

_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class LabelMatch:
    key: str
    pattern: str
    negate: bool = False

    def __str__(self) -> str:
        return f"{self.key}{'!=' if self.negate else '='}{self.pattern}"

    def holds(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        hit = value is not None and fnmatch.fnmatchcase(value, self.pattern)
        return not hit if self.negate else hit


@dataclass(frozen=True)
class TargetSelection:
    """The empty selection selects every target."""

    names: tuple[str, ...] = ()
    labels: tuple[LabelMatch, ...] = ()

    def matches(self, t: Target) -> bool:
        if self.names and not any(fnmatch.fnmatchcase(t.name, g) for g in self.names):
            return False
        labels = t.label_map
        return all(m.holds(labels) for m in self.labels)

    def may_discover(self, seed: Target) -> bool:
        """False when no target the seed's query could list can be selected, so its cluster
        need not be asked (nor be reachable). Conservative: True when unsure."""
        if self.names and not any(_may_match_prefix(g, seed.name + "/") for g in self.names):
            return False
        # a discovered target keeps its seed's labels: a label the seed fixes decides now
        fixed = seed.label_map
        return all(m.holds(fixed) for m in self.labels if m.key in fixed)

    def describe(self) -> str:
        return " ".join([f"--target {g}" for g in self.names] + [f"--label {m}" for m in self.labels])


def _may_match_prefix(glob: str, prefix: str) -> bool:
    """Can `glob` match some string that starts with `prefix`? Compares the glob's literal head."""
    cut = min([glob.index(c) for c in _GLOB_CHARS if c in glob] or [len(glob)])
    head = glob[:cut]
    if cut == len(glob):          # no wildcard: the glob is one name
        return glob.startswith(prefix)
    return head.startswith(prefix) or prefix.startswith(head)


def parse_selection(target_globs: Iterable[str] = (), label_texts: Iterable[str] = ()) -> TargetSelection:
    names = []
    for g in target_globs:
        if not g.strip():
            raise ReconcilerError("--target: empty name or glob")
        names.append(g.strip())
    labels = []
    for text in label_texts:
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(!?=)\s*(.*?)\s*", text)
        if not m or not LABEL_KEY.fullmatch(m.group(1)) or not m.group(3) or m.group(3).startswith("="):
            raise ReconcilerError(f"--label {text!r}: expected KEY=VALUE or KEY!=VALUE (the value may be a glob)",
                                  "repeat --label for more conditions; all of them must hold")
        labels.append(LabelMatch(m.group(1), m.group(3), m.group(2) == "!="))
    return TargetSelection(tuple(names), tuple(labels))


def select_targets(targets: Sequence[Target], selection: TargetSelection, *, source: str = "the targets file",
                   unsure: Sequence[Target] = ()) -> list[Target]:
    """The selected targets, in name order. A --target glob that matches none is an error (a
    typo would otherwise run nothing and report success), unless it could match a target of a
    seed whose discovery failed (`unsure`)."""
    chosen = sorted((t for t in targets if selection.matches(t)), key=lambda t: t.name)
    for g in selection.names:
        if not any(fnmatch.fnmatchcase(t.name, g) for t in targets) and \
                not any(_may_match_prefix(g, s.name + "/") for s in unsure):
            known = ", ".join(sorted(t.name for t in targets)[:10]) or "none"
            more = " ..." if len(targets) > 10 else ""
            raise ReconcilerError(f"--target {g!r}: no target of {source} has this name (targets: {known}{more})")
    return chosen


@dataclass(frozen=True)
class Shard:
    k: int   # 1-based
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def parse_shard(text: str | None) -> Shard | None:
    if text is None or text == "":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise ReconcilerError(f"--shard {text!r}: expected K/N, e.g. 2/8 (shard K of N, counted from 1)")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        hint = "counted from 1: a Kubernetes Indexed Job passes $((JOB_COMPLETION_INDEX + 1))/N" if k == 0 else None
        raise ReconcilerError(f"--shard {text!r}: K must be between 1 and N (N >= 1)", hint)
    return Shard(k, n)


def apply_shard(targets: Sequence[Target], shard: Shard | None) -> list[Target]:
    """Shard K of N of the targets (sorted by name): positions K-1, K-1+N, ..."""
    ordered = sorted(targets, key=lambda t: t.name)
    if shard is None:
        return ordered
    return ordered[shard.k - 1::shard.n]
