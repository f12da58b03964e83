"""What a command imports before it does its work: the command list and shell completion load no
command, `--help` of a command loads that command only, and `verify` never loads sqlglot.
Startup time is most of a short command's time (benchmarks/verify_scale.py); these keep the
gain without timing anything: they read `sys.modules` of a real `reconciler` process."""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap

import reconciler.cli
from reconciler.cli.group import COMMANDS, cli

# Loaded only where a command needs them: the database driver, the SQL parser (normalize), the
# spec models (pydantic) and the YAML reader.
HEAVY = ("psycopg", "sqlglot", "pydantic", "yaml", "reconciler.normalize", "reconciler.spec.models")

PROBE = ("import atexit, json, os, sys\n"
         "out = os.environ.pop('MODULES_OUT')\n"
         "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules))))\n"
         "from reconciler.cli import main\n"
         "main()\n")


def modules_after(tmp_path, *args, env_extra=None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `reconciler ARGS` in a fresh process; its result and the modules it had loaded at exit."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "_RECONCILER"))}
    env.update(env_extra or {}, MODULES_OUT=str(out))
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120, stdin=subprocess.DEVNULL)
    return r, set(json.loads(out.read_text()))


def loaded(modules: set[str], prefix: str) -> bool:
    return any(m == prefix or m.startswith(prefix + ".") for m in modules)


def command_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("reconciler.cli.")} - {
        "reconciler.cli.main", "reconciler.cli.group", "reconciler.cli.options", "reconciler.cli.argv"}


def test_the_command_list_loads_no_command(tmp_path):
    r, modules = modules_after(tmp_path, "--help")
    assert r.returncode == 0, r.stderr
    for name, (_, summary) in COMMANDS.items():
        assert f"  {name} " in r.stdout and summary in r.stdout, name
    assert command_modules(modules) == set()
    assert not [h for h in HEAVY if loaded(modules, h)]


def test_completing_a_command_name_loads_no_command(tmp_path):
    r, modules = modules_after(tmp_path, env_extra={"_RECONCILER_COMPLETE": "zsh_complete",
                                                    "COMP_WORDS": "reconciler ve", "COMP_CWORD": "1"})
    assert r.returncode == 0, r.stderr
    assert "verify" in r.stdout and COMMANDS["verify"][1] in r.stdout
    assert command_modules(modules) == set()


def test_a_command_help_loads_that_command_only(tmp_path):
    r, modules = modules_after(tmp_path, "verify", "--help")
    assert r.returncode == 0 and "--analyze" in r.stdout, r.stderr
    assert command_modules(modules) == {"reconciler.cli.verify", "reconciler.cli.fleet"}
    assert not [h for h in HEAVY if loaded(modules, h)]


def test_verify_loads_no_sql_parser(tmp_path):
    """A real verify run up to the database (a spec whose query names a missing index is refused
    before connecting): spec models and the driver, never sqlglot nor the plan's machinery."""
    (tmp_path / "indexes.yaml").write_text(textwrap.dedent("""
        version: 1
        indexes:
          - {name: t_a, table: t, columns: [a]}
        queries:
          - {name: q, sql: "SELECT * FROM t WHERE a = 1", uses: [t_b]}
    """))
    r, modules = modules_after(tmp_path, "verify")
    assert r.returncode == 1 and "'t_b' is not an index of the spec" in r.stderr, r.stderr
    assert loaded(modules, "reconciler.spec.models") and loaded(modules, "reconciler.app.verify")
    assert not [m for m in ("sqlglot", "reconciler.normalize", "reconciler.core.plan", "reconciler.reconcile")
                if loaded(modules, m)]


def test_a_verify_run_loads_only_what_it_runs(tmp_path, dsn, run_sql):
    """A real verify on a database (custom and generic plans, JSON out): the throwaway-server
    module (no --schema-sql), the volatile-function check (no --analyze) and statistics (nothing
    measured) stay unloaded, as do sqlglot and the plan's machinery."""
    run_sql(dsn, "CREATE TABLE t (a int, b text); CREATE INDEX t_a ON t (a)")
    (tmp_path / "indexes.yaml").write_text(textwrap.dedent("""
        version: 1
        indexes:
          - {name: t_a, table: t, columns: [a]}
        queries:
          - {name: custom, sql: "SELECT * FROM t WHERE a = $1", params: [1]}
          - {name: generic, sql: "SELECT * FROM t WHERE a = $1 AND b = 'x'"}
          - {name: plain, sql: "SELECT count(*) FROM t"}
    """))
    r, modules = modules_after(tmp_path, "verify", "-d", dsn, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [q["mode"] for q in json.loads(r.stdout)["queries"]] == ["custom plan (params)", "generic plan", "plan"]
    assert not [m for m in ("reconciler.pg.embedded", "reconciler.queries.calls", "statistics", "sqlglot",
                            "reconciler.normalize", "reconciler.core.plan", "reconciler.reconcile")
                if loaded(modules, m)]


def test_the_spec_models_cost_no_signature_parsing_to_build():
    """pydantic reads each default_factory's signature while building a model: for a builtin
    (`list`) that parses its text signature with tokenize (a ~10 ms regex compile at every
    start), for a model class it builds the class signature. String annotations (`from
    __future__ import annotations`) are compiled one by one. The spec models avoid both."""
    from reconciler.spec import models

    built = [m for m in vars(models).values() if isinstance(m, type) and issubclass(m, models.BaseModel)
             and m is not models.BaseModel]
    assert len(built) >= 7
    for model in built:
        assert not [a for a in model.__annotations__.values() if isinstance(a, str)], model
        factories = [f.default_factory for f in model.model_fields.values() if f.default_factory is not None]
        assert all(type(f).__name__ == "function" for f in factories), (model, factories)


def test_a_finished_command_exits_without_collecting_what_it_built(tmp_path):
    """At exit CPython runs full collections over every live object (pydantic's schemas, psycopg,
    the spec): a fifth of a 200-query verify's CPU. main() freezes them once the command is done;
    an exit handler registered before main() runs after that and sees them frozen."""
    out = tmp_path / "frozen"
    probe = ("import atexit, gc\n"
             f"atexit.register(lambda: open({str(out)!r}, 'w').write(str(gc.get_freeze_count())))\n"
             "from reconciler.cli import main\n"
             "main()\n")
    r = subprocess.run([sys.executable, "-c", probe, "schema"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and json.loads(r.stdout)["title"], r.stderr
    assert int(out.read_text()) > 10_000


def test_plan_without_queries_loads_no_query_machinery(tmp_path):
    """A plan run up to the database (an unreachable one) on a spec with no queries: the spec
    and normalize load, the what-if and verify machinery and the plan file writer do not. With
    a query that names a missing index, the same run is refused by that machinery."""
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n  - {name: t_a, table: t, columns: [a]}\n")
    nowhere = f"postgresql://nobody@/db?host={tmp_path / 'no-server'}&connect_timeout=2"
    r, modules = modules_after(tmp_path, "plan", "--database", nowhere)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert loaded(modules, "reconciler.normalize") and loaded(modules, "reconciler.app.engine")
    assert not [m for m in ("reconciler.app.verify", "reconciler.app.whatif", "reconciler.queries",
                            "reconciler.reconcile.planfile") if loaded(modules, m)]
    spec.write_text(spec.read_text() + "queries:\n  - {name: q, sql: SELECT 1, uses: [t_b]}\n")
    r, modules = modules_after(tmp_path, "plan", "--database", nowhere)
    assert r.returncode == 1 and "'t_b' is not an index of the spec" in r.stderr, r.stderr
    assert loaded(modules, "reconciler.app.verify")


def test_every_command_is_in_the_registry():
    """A command module defines exactly the commands COMMANDS says it does (else --help would
    miss a command, or list one that does not load)."""
    for info in pkgutil.iter_modules(reconciler.cli.__path__):
        importlib.import_module(f"reconciler.cli.{info.name}")
    defined = {name: cmd.callback.__module__ for name, cmd in cli.commands.items()}
    assert defined == {name: f"reconciler.cli.{module}" for name, (module, _) in COMMANDS.items()}


def test_every_summary_fits_one_help_line():
    too_long = {name: s for name, (_, s) in COMMANDS.items() if len(s) > 64 or "\n" in s or not s.endswith(".")}
    assert too_long == {}
