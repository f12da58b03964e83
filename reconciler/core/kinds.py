"""The kinds a plan is made of, as values: change actions, operation kinds, drift kinds.

Each kind is a `Kind`: a str-valued enum, equal to its stable spelling, so JSON output, plan
files and goldens keep their exact shape, and a misspelt kind fails where it is made instead of
silently matching nothing. Pure.
"""
from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    """An enum whose value is its stable spelling: equal to that string, hashed, printed and
    serialized (json, f-strings) as it.

    >>> Action("create") is Action.CREATE, Action.CREATE == "create", f"{Action.CREATE}"
    (True, True, 'create')
    """

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__

    @classmethod
    def parse(cls, value: object) -> "Kind":
        """`value` as a member; a ValueError naming the valid spellings otherwise."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown {cls.__name__} {value!r} (valid: {valid})") from None


class Action(Kind):
    """What must happen to one index (a `Change`)."""

    CREATE = "create"
    DROP = "drop"
    REPLACE = "replace"      # rename the old aside, build the new under the name, drop the old
    RENAME = "rename"        # the same definition exists under another name
    REBUILD = "rebuild"      # the definition matches but the index is INVALID


class OpKind(Kind):
    """What one statement of a plan does (an `Operation`); the executor dispatches on it."""

    CHECK_UNIQUE = "check_unique"          # look for duplicate keys before a UNIQUE build
    BUILD = "build"                        # CREATE INDEX CONCURRENTLY
    BUILD_PARENT = "build_parent"          # CREATE INDEX ON ONLY the partitioned parent
    BUILD_PARTITION = "build_partition"    # CREATE INDEX CONCURRENTLY on one leaf partition
    BUILD_SUBPARENT = "build_subparent"    # CREATE INDEX ON ONLY a sub-partitioned table
    ATTACH = "attach"                      # ALTER INDEX ... ATTACH PARTITION
    REINDEX = "reindex"                    # REINDEX INDEX CONCURRENTLY
    RENAME = "rename"                      # ALTER INDEX ... RENAME TO
    RENAME_CHILDREN = "rename_children"    # rename every partition index under a parent aside
    DROP = "drop"                          # DROP INDEX [CONCURRENTLY]
    ANALYZE = "analyze"                    # statistics for a new expression index; maintain: stale ones
    VACUUM = "vacuum"                      # VACUUM (ANALYZE) of a table (reconciler maintain --vacuum)
    COMMENT = "comment"                    # COMMENT ON INDEX


class DriftKind(Kind):
    """A difference `drift` reports that is not a change of the plan."""

    EXTRA = "extra"                # on a managed table, not in the spec (kept: prune is off)
    CONSTRAINT = "constraint"      # backs a constraint and differs from the spec: never replaced
    BEING_BUILT = "being_built"    # another session is building it right now: left alone
    IGNORED = "ignored"            # listed in the spec but matches manage.ignore
