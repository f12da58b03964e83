"""The kinds and the hazard catalogue: one entry per code, --allow-hazard checked against it,
docs/ generated from it (and from the event types) and kept current. No database."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.app import docs
from reconciler.core.hazards import Hazard, HazardCode, parse_allowed
from reconciler.core.kinds import Action, DriftKind, OpKind
from reconciler.core.plan import Change, Drift, Operation
from reconciler.errors import ReconcilerError

from support.cli import assert_one_error, run_cli

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_generated_docs_are_current():
    stale = docs.stale(DOCS)
    assert not stale, f"docs/{', docs/'.join(stale)} out of date: run `python scripts/gendocs.py`"


@pytest.mark.parametrize("code", list(HazardCode), ids=str)
def test_every_hazard_code_is_a_full_catalogue_entry(code):
    assert re.fullmatch(r"[A-Z][A-Z0-9_]+", code.value) and code.name == code.value
    assert code.meaning and code.why and code.allow
    assert not code.meaning.endswith(".") and not code.why.endswith(".")   # the page adds the full stop
    assert (f"--allow-hazard {code.value}" in code.allow) is code.blocking


def test_hazard_blocking_comes_from_the_catalogue():
    assert Hazard(HazardCode.DROPS_USED_INDEX, "m").blocking
    assert not Hazard("INDEX_BUILD", "m").blocking
    assert Hazard("INDEX_BUILD", "m").to_dict() == {"code": "INDEX_BUILD", "message": "m", "blocking": False}


def test_parse_allowed_accepts_known_codes_in_any_case():
    assert parse_allowed(["DROPS_USED_INDEX", " index_build "]) == {HazardCode.DROPS_USED_INDEX,
                                                                     HazardCode.INDEX_BUILD}
    assert parse_allowed([]) == frozenset()


def test_parse_allowed_refuses_a_typo_with_a_suggestion_and_the_valid_codes():
    with pytest.raises(ReconcilerError) as err:
        parse_allowed(["DROP_USED_INDEX"])
    msg = err.value.message
    assert "\n" not in msg and "unknown hazard code 'DROP_USED_INDEX'" in msg
    assert "did you mean DROPS_USED_INDEX?" in msg
    assert all(c.value in msg for c in HazardCode)


def test_apply_with_an_unknown_hazard_code_is_one_line_before_connecting(tmp_path):
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes: []\n")
    # a database that does not exist: the typo must be reported before any connection is tried
    r = run_cli("apply", "-f", str(spec), "--database", "postgresql://u:pw@127.0.0.1:1/none", "--auto-approve",
                "--allow-hazard", "DROPS_USED_INDEXX")
    line = assert_one_error(r, "--allow-hazard: unknown hazard code 'DROPS_USED_INDEXX' (did you mean "
                               "DROPS_USED_INDEX?); valid codes: ")
    assert "cannot connect" not in r.stderr and all(c.value in line for c in HazardCode)


@pytest.mark.parametrize("make", [
    lambda: Change("crate", "public", "t", "i"),
    lambda: Operation("SELECT 1", "bulid"),
    lambda: Drift("extar", "public", "t", "i", "m"),
    lambda: Hazard("INDEX_BUILT", "m"),
], ids=["action", "operation", "drift", "hazard"])
def test_a_misspelt_kind_fails_where_it_is_made(make):
    with pytest.raises(ValueError, match="unknown .* \\(valid: "):
        make()


def test_kinds_are_their_spelling():
    c = Change("create", "public", "t", "i")
    assert c.action is Action.CREATE and c.action == "create" and f"{c.action}" == "create"
    assert Operation("SELECT 1", "check_unique").kind is OpKind.CHECK_UNIQUE
    assert Drift("being_built", "s", "t", "i", "m").kind is DriftKind.BEING_BUILT
    assert {Action.DROP: 1}["drop"] == 1 and {"drop": 1}[Action.DROP] == 1
