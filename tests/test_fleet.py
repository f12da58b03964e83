"""The fleet room without a database: targets files, selection, shards, the pool, results."""
from __future__ import annotations

import threading
import time

import pytest

from reconciler.errors import ReconcilerError
from reconciler.fleet import (
    Shard,
    Status,
    TargetResult,
    apply_shard,
    combined_exit_code,
    discovered_targets,
    parse_selection,
    parse_shard,
    parse_targets,
    run_pool,
    select_targets,
)
from reconciler.fleet.targets import Target, TargetError, TargetsError
from reconciler.fleet.workers import fork_available

GOOD = """\
version: 1
defaults:
  labels: {env: prod}
targets:
  - name: eu-1
    dsn_env: EU1_URL
    labels: {region: eu, tier: 1}
  - name: us-1
    service: us
    dbname: app
    labels: {region: us, env: staging}
  - name: tenants
    dsn_env: ADMIN_URL
    labels: {region: eu}
    discover: SELECT datname FROM pg_database WHERE datname LIKE 'tenant%'
"""


def test_a_targets_file_reads_into_targets_and_seeds():
    tf = parse_targets(GOOD, "t.yaml")
    assert [t.name for t in tf.targets] == ["eu-1", "us-1"]
    assert [s.name for s in tf.seeds] == ["tenants"]
    eu, us = tf.targets
    assert eu.label_map == {"env": "prod", "region": "eu", "tier": "1"}
    assert us.label_map == {"env": "staging", "region": "us"}      # the target's label wins over defaults
    assert eu.where == "t.yaml:5" and us.where == "t.yaml:8"
    assert eu.connection({"EU1_URL": "host=a dbname=b"}) == ("host=a dbname=b", {})
    assert us.connection({}) == ("", {"service": "us", "dbname": "app"})


def test_a_missing_environment_variable_fails_that_target_only():
    eu = parse_targets(GOOD, "t.yaml").targets[0]
    with pytest.raises(TargetError, match=r"target 'eu-1' \(t.yaml:5\): environment variable EU1_URL is not set"):
        eu.connection({})


@pytest.mark.parametrize("text, message", [
    ("version: 1\ntargets:\n  - name: a\n    dsn: postgresql://u:secret@h/db\n",
     r"^t.yaml:4: targets\[0\].dsn: a targets file never holds a DSN or a password"),
    ("version: 1\ntargets:\n  - name: a\n    password: hunter2\n",
     r"^t.yaml:4: targets\[0\].password: a targets file never holds"),
    ("version: 1\ndefaults:\n  url: x\ntargets:\n  - name: a\n", r"^t.yaml:3: defaults.url: a targets file never"),
    ("version: 1\ntargets:\n  - name: a\n    host: 'postgresql://u:pw@h/db'\n",
     r"^t.yaml:4: targets\[0\].host: looks like a connection string"),
    ("version: 1\ntargets:\n  - name: a\n    dbname: 'x password=pw'\n", r"^t.yaml:4: targets\[0\].dbname: looks like"),
    ("version: 1\ntargets:\n  - name: a\n  - name: b\n    dsn_envv: X\n",
     r"^t.yaml:5: targets\[1\].dsn_envv: unknown key 'dsn_envv' \(allowed: name, dsn_env"),
    ("version: 1\ntargets:\n  - name: a\n  - name: a\n", r"^t.yaml:4: targets\[1\].name: 'a' is already the name of "
                                                         r"the target at t.yaml:3"),
    ("version: 1\ntargets:\n  - name: eu/1\n", r"^t.yaml:3: targets\[0\].name: 'eu/1': a target name uses"),
    ("version: 1\ntargets:\n  - dsn_env: X\n", r"^t.yaml:3: targets\[0\].name: required key 'name' is missing"),
    ("version: 1\ntargets:\n  - name: a\n    dsn_env: 'not a var'\n", r"^t.yaml:4: targets\[0\].dsn_env: 'not a var'"),
    ("version: 1\ntargets:\n  - name: a\n    port: 99999\n", r"^t.yaml:4: targets\[0\].port: "),
    ("version: 1\ntargets: []\n", r"^t.yaml:2: targets: "),
    ("version: 2\ntargets:\n  - name: a\n", r"^t.yaml:1: version: "),
    ("version: 1\ntargets:\n  - name: a\n    labels: {'bad key': x}\n", r"^t.yaml:4: targets\[0\].labels: .*label key"),
    ("version: 1\ntargets:\n  - name: a\n    discover: ' '\n", r"^t.yaml:4: targets\[0\].discover: empty query"),
    ("version: 1\ntargets:\n  - name: a\n  name: b\n", r"^t.yaml:4: YAML syntax error"),
    ("version: 1\ntargets:\n  - name: a\n    name: b\n", r"^t.yaml:4: targets\[0\].name: key 'name' appears twice"),
    ("", r"^t.yaml:1: the file is empty"),
    ("- a\n", r"^t.yaml:1: expected a mapping"),
])
def test_bad_targets_files_get_one_line_naming_file_and_line(text, message):
    with pytest.raises(TargetsError, match=message) as e:
        parse_targets(text, "t.yaml")
    assert "\n" not in e.value.message
    assert "secret" not in e.value.message and "hunter2" not in e.value.message and "pw" not in e.value.message.split(":", 2)[-1].replace("password", "")


def test_discovered_targets_take_the_seed_connection_and_labels():
    seed = parse_targets(GOOD, "t.yaml").seeds[0]
    got = discovered_targets(seed, ["dbname", "tier", "region"], [("tenant_a", "gold", "us"), ("tenant_b", None, None)])
    assert [t.name for t in got] == ["tenants/tenant_a", "tenants/tenant_b"]
    a = got[0]
    assert a.dbname == "tenant_a" and a.dsn_env == "ADMIN_URL" and a.seed == "tenants" and a.discover is None
    assert a.label_map == {"env": "prod", "region": "eu", "tier": "gold"}    # the seed's labels win
    assert got[1].label_map == {"env": "prod", "region": "eu"}
    assert a.connection({"ADMIN_URL": "host=h"}) == ("host=h", {"dbname": "tenant_a"})
    assert [t.name for t in discovered_targets(seed, ["datname"], [("x",)])] == ["tenants/x"]
    with pytest.raises(TargetError, match="name the database column `dbname`"):
        discovered_targets(seed, ["a", "b"], [("x", "y")])
    with pytest.raises(TargetError, match="listed twice"):
        discovered_targets(seed, ["dbname"], [("x",), ("x",)])
    with pytest.raises(TargetError, match="no database name"):
        discovered_targets(seed, ["dbname"], [(None,)])


def _t(name, **labels):
    return Target(name, "t.yaml:1", tuple(sorted(labels.items())))


FLEET = [_t("eu-1", region="eu", tier="gold"), _t("eu-2", region="eu"), _t("us-1", region="us", tier="gold"),
         _t("tenants/a", region="eu"), _t("tenants/b", region="eu")]


@pytest.mark.parametrize("names, labels, expected", [
    ((), (), ["eu-1", "eu-2", "tenants/a", "tenants/b", "us-1"]),
    (("eu-*",), (), ["eu-1", "eu-2"]),
    (("eu-1", "us-1"), (), ["eu-1", "us-1"]),
    ((), ("region=eu",), ["eu-1", "eu-2", "tenants/a", "tenants/b"]),
    ((), ("region=eu", "tier=gold"), ["eu-1"]),
    ((), ("tier!=gold",), ["eu-2", "tenants/a", "tenants/b"]),
    (("tenants/*", "us-1"), ("region=e?",), ["tenants/a", "tenants/b"]),
])
def test_selection_by_name_glob_and_labels(names, labels, expected):
    sel = parse_selection(names, labels)
    assert [t.name for t in select_targets(FLEET, sel)] == expected


def test_a_target_glob_that_matches_nothing_is_an_error_unless_a_failed_discovery_could_explain_it():
    with pytest.raises(ReconcilerError, match=r"--target 'eu-9': no target of the targets file has this name "
                                              r"\(targets: eu-1, eu-2"):
        select_targets(FLEET, parse_selection(["eu-9"]))
    seed = _t("other")
    assert select_targets(FLEET, parse_selection(["other/*"]), unsure=[seed]) == []


@pytest.mark.parametrize("names, labels, seed_labels, expected", [
    ((), (), {}, True),
    (("eu-1",), (), {}, False),
    (("tenants/a",), (), {}, True),
    (("ten*",), (), {}, True),
    (("t?nants/*",), (), {}, True),
    (("x*",), (), {}, False),
    (("tenant",), (), {}, False),
    ((), ("region=us",), {"region": "eu"}, False),
    ((), ("region=eu",), {"region": "eu"}, True),
    ((), ("tier=gold",), {"region": "eu"}, True),        # rows may bring the label
])
def test_a_seed_is_asked_only_when_its_targets_could_be_selected(names, labels, seed_labels, expected):
    seed = _t("tenants", **seed_labels)
    assert parse_selection(names, labels).may_discover(seed) is expected


@pytest.mark.parametrize("text", ["x", "k", "=v", "k=", "bad key=v", "k==v"])
def test_bad_label_selectors(text):
    with pytest.raises(ReconcilerError, match="--label"):
        parse_selection((), [text])


@pytest.mark.parametrize("text, hint", [("0/4", "JOB_COMPLETION_INDEX"), ("5/4", None), ("1/0", None), ("a/b", None),
                                        ("3", None)])
def test_bad_shards(text, hint):
    with pytest.raises(ReconcilerError, match="--shard") as e:
        parse_shard(text)
    if hint:
        assert hint in e.value.hint


@pytest.mark.parametrize("n_targets", [0, 1, 7, 50])
@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_shards_cover_every_target_exactly_once_and_are_balanced(n_targets, n):
    targets = [_t(f"db-{i:03d}") for i in range(n_targets)][::-1]
    shards = [apply_shard(targets, parse_shard(f"{k}/{n}")) for k in range(1, n + 1)]
    names = [t.name for s in shards for t in s]
    assert sorted(names) == sorted(t.name for t in targets) and len(names) == len(set(names))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    # deterministic whatever the input order
    assert [t.name for t in apply_shard(list(reversed(targets)), Shard(1, n))] == [t.name for t in shards[0]]


def _result(name, status, code=0):
    return TargetResult(name, status, code, "")


@pytest.mark.parametrize("statuses, expected", [
    ([], 0),
    ([(Status.OK, 0), (Status.OK, 0)], 0),
    ([(Status.OK, 0), (Status.CHANGES, 2)], 2),
    ([(Status.CHANGES, 0)], 0),                         # plan without --detailed-exitcode
    ([(Status.CHANGES, 2), (Status.FAILED, 1)], 1),
    ([(Status.OK, 0), (Status.SKIPPED, 0)], 1),
])
def test_combined_exit_code(statuses, expected):
    assert combined_exit_code([_result(str(i), s, c) for i, (s, c) in enumerate(statuses)]) == expected


def _pool(items, job, **kw):
    return run_pool(items, job, failed=lambda r: r[1] == "failed", skipped=lambda i, why: (i, "skipped", why),
                    crashed=lambda i, e: (i, "failed", str(e)), **kw)


def test_the_pool_runs_every_item_at_most_parallel_at_a_time():
    lock = threading.Lock()
    running, peak = [0], [0]

    def job(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return (i, "ok")

    seen = []
    out = _pool(list(range(12)), job, parallel=3, on_result=seen.append)
    assert sorted(r[0] for r in out) == list(range(12)) and seen == out
    assert 1 <= peak[0] <= 3


def test_a_failure_never_stops_the_others_unless_fail_fast():
    def job(i):
        if i == 1:
            raise RuntimeError("boom")
        return (i, "ok")

    out = _pool(list(range(6)), job, parallel=1)
    assert [r[1] for r in out] == ["ok", "failed", "ok", "ok", "ok", "ok"] and out[1][2] == "boom"
    out = _pool(list(range(6)), job, parallel=1, fail_fast=True)
    assert [r[1] for r in out] == ["ok", "failed", "skipped", "skipped", "skipped", "skipped"]
    assert "--fail-fast" in out[2][2]


def test_fail_fast_lets_running_jobs_finish():
    release = threading.Event()

    def job(i):
        if i == 0:
            return (i, "failed")
        release.wait(5)
        return (i, "ok")

    def on_result(r):
        if r[1] == "failed":
            release.set()

    out = _pool(list(range(5)), job, parallel=2, fail_fast=True, on_result=on_result)
    by = {r[0]: r[1] for r in out}
    assert by[0] == "failed" and by[1] == "ok" and {by[i] for i in (2, 3, 4)} == {"skipped"}


@pytest.mark.parametrize("names, clash", [
    (["db:a", "db_a"], "targets 'db:a' and 'db_a' would both be written to OUT/db_a.yaml"),
    (["Prod", "prod"], "targets 'Prod' and 'prod' would both be written to OUT/Prod.yaml"),
])
def test_import_targets_refuses_two_targets_that_share_a_file_before_connecting(tmp_path, names, clash):
    from support.cli import run_cli

    targets = tmp_path / "targets.yaml"
    targets.write_text("version: 1\ntargets:\n" + "".join(f"  - {{name: '{n}', dsn_env: NOT_SET_ANYWHERE}}\n"
                                                         for n in names))
    out = tmp_path / "out"
    res = run_cli("import", "--targets", targets, "-o", out)
    assert res.returncode == 1 and res.stdout == "", res.stdout + res.stderr
    first = res.stderr.splitlines()[0]
    assert first.startswith("error: " + clash.replace("OUT", str(out))), res.stderr
    assert "Traceback" not in res.stderr and list(out.iterdir()) == []   # nothing written, nothing connected


def test_target_files_of_discovered_names_are_checked_the_same_way(tmp_path):
    """Discovered targets are named SEED/DATABASE, and a database name may hold any character."""
    from reconciler.app.importer import check_target_files, target_file

    assert target_file(tmp_path, "eu/db 1").name == "eu__db_1.yaml"
    assert target_file(tmp_path, ".hidden").name == "_.hidden.yaml"
    for a, b in (("eu/1", "eu__1"), (".x", "_.x"), ("eu/caf\u00e9", "eu/caf\u00e8"), ("eu/a\nb", "eu/a b")):
        with pytest.raises(ReconcilerError, match="would both be written to") as e:
            check_target_files(tmp_path, [a, b, "other"], force=False)
        assert "\n" not in e.value.message
    check_target_files(tmp_path, ["eu/1", "eu/2", "us/1"], force=False)
    (tmp_path / "eu__2.yaml").write_text("x")
    with pytest.raises(ReconcilerError, match="eu__2.yaml: already exists .target 'eu/2'.; not overwritten"):
        check_target_files(tmp_path, ["eu/1", "eu/2"], force=False)
    check_target_files(tmp_path, ["eu/1", "eu/2"], force=True)


# ---------------------------------------------------------------------------------------------
# worker processes (Linux): the same contract as the thread pool, each job in its own process

needs_fork = pytest.mark.skipif(not fork_available(), reason="worker processes need fork (Linux)")


def _forked(items, job, **kw):
    import json

    from reconciler.fleet.workers import run_forked

    return run_forked(items, job, failed=lambda r: r[1] == "failed", skipped=lambda i, why: (i, "skipped", why),
                      crashed=lambda i, e: (i, "failed", f"{type(e).__name__}: {e}"),
                      encode=json.dumps, decode=lambda t: tuple(json.loads(t)), **kw)


@needs_fork
def test_worker_processes_run_every_item_in_other_processes_and_the_parent_prints_what_they_say():
    import os

    from reconciler.fleet.workers import post

    parent = os.getpid()

    def job(i):
        post(f"item {i} says hello")
        time.sleep(0.05)
        return (i, "ok", os.getpid())

    said, seen = [], []
    out = _forked(list(range(6)), job, parallel=3, on_result=seen.append, on_message=said.append)
    assert sorted(r[0] for r in out) == list(range(6)) and seen == out
    pids = {r[2] for r in out}
    assert parent not in pids and 1 <= len(pids) <= 3
    assert sorted(said) == [f"item {i} says hello" for i in range(6)]
    assert post("outside a worker") is False


@needs_fork
def test_a_worker_that_dies_fails_its_item_only_and_a_job_error_is_its_items_result():
    import os

    def job(i):
        if i == 1:
            os._exit(7)          # as if the OOM killer took it
        if i == 2:
            raise RuntimeError("boom")
        return (i, "ok")

    out = _forked(list(range(5)), job, parallel=2)
    by = {r[0]: r for r in out}
    assert sorted(by) == list(range(5))
    assert by[1][1] == "failed" and "exit status 7" in by[1][2]
    assert by[2] == (2, "failed", "RuntimeError: boom")
    assert all(by[i][1] == "ok" for i in (0, 3, 4))


@needs_fork
def test_worker_processes_fail_fast_start_nothing_after_a_failure():
    def job(i):
        return (i, "failed" if i == 0 else "ok")

    # one worker: item 0's failure is seen before any other item is handed out
    out = _forked(list(range(6)), job, parallel=1, fail_fast=True)
    assert [r[1] for r in out] == ["failed"] + ["skipped"] * 5
    assert all("--fail-fast" in r[2] for r in out[1:])
    out = _forked(list(range(6)), job, parallel=1)
    assert sorted(r[1] for r in out) == ["failed"] + ["ok"] * 5


@needs_fork
def test_a_fleet_result_crosses_the_pipe_as_json_unchanged():
    from reconciler.app.fleet import decode_result, encode_result

    r = TargetResult("eu-1", Status.CHANGES, 2, "Plan: 1 to create.", 1.5, "text\n", {"changes": [{"a": 1}]},
                     "a hint", (("region", "eu"),))
    assert decode_result(encode_result(r)) == r
