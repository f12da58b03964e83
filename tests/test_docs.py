"""The docs cannot drift from the tool (the sqlite-utils way).

- Every ```console block in docs/*.md is run: each `$ command` line runs in bash, in the order
  of the page, in a fresh workspace (a copy of the repository's indexes.yaml, examples/ and
  schema/) with $DATABASE_URL pointing at a fresh database loaded with the JustoAI schema
  (examples/justoai/schema.sql). Its output (stdout and stderr, as one stream) must be what the page shows.
  Volatile parts (durations, ages, fingerprints, temporary paths) are masked on both sides;
  a line `...` in a page stands for any number of lines. `pytest --update-goldens` rewrites
  the outputs from a real run.
- `<!-- docs-test: sql ... -->` in a page runs that SQL against the page's database at that
  point (to set up a state the next commands need; not shown on the site).
- Every command of the CLI (also the ones added later) has a section in docs/commands.md and
  is run by at least one console block somewhere in the docs.
- The spec reference (docs/spec-reference.md) is the one generated from the JSON Schema.
- mkdocs.yml's nav lists every page.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```console\n(.*?)^```\n", re.S | re.M)
SETUP = re.compile(r"<!-- docs-test: sql (.*?) -->", re.S)

MASKS = [
    (re.compile(r"\b\d+\.\d+s\b"), "<T>s"),                       # durations
    (re.compile(r"made (just now|\d+ \w+ ago)( \(\d{4}-\d\d-\d\dT[\d:]+\+00:00\))?"), "made <AGE>"),
    (re.compile(r"(target: )\S+@\S+"), r"\1<DB>"),                  # each test has its own database
    (re.compile(r"(fingerprint:? )[0-9a-f]{16}"), r"\1<FP>"),
    (re.compile(r'"(fingerprint|age_s)": [^,\n]+'), r'"\1": <X>'),
    (re.compile(r"/tmp/[\w./-]+"), "<TMP>"),
    (re.compile(r'database="[^"]*"'), 'database="<DB>"'),           # each test has its own database
    (re.compile(r"\bcost [\d,]+(\.\d+)?( → [\d,]+(\.\d+)?)?"), "cost <C>"),   # planner estimates differ by version
    (re.compile(r"[\d,]+ bytes"), "<N> bytes"),
    (re.compile(r"\d+(\.\d+)? (kB|MB|bytes)\b"), "<SIZE>"),
    (re.compile(r"\s+$", re.M), ""),
]


def mask(text: str) -> str:
    for rx, rep in MASKS:
        text = rx.sub(rep, text)
    return text


@dataclass
class Step:
    kind: str                  # "cmd" or "sql"
    text: str
    expected: list[str] = field(default_factory=list)
    span: tuple[int, int] = (0, 0)   # where the expected output sits in the page (for --update-goldens)


def steps(page: Path) -> list[Step]:
    text = page.read_text()
    events = [(m.start(), "sql", m) for m in SETUP.finditer(text)] + [(m.start(), "block", m) for m in
                                                                       FENCE.finditer(text)]
    out: list[Step] = []
    for _, kind, m in sorted(events, key=lambda e: e[0]):
        if kind == "sql":
            out.append(Step("sql", m.group(1).strip()))
            continue
        body_start = m.start(1)
        pos = body_start
        current: Step | None = None
        for line in m.group(1).splitlines(keepends=True):
            if line.startswith("$ "):
                if current is not None:
                    current.span = (current.span[0], pos)
                current = Step("cmd", line[2:].rstrip("\n"))
                current.span = (pos + len(line), pos + len(line))
                out.append(current)
            elif current is not None:
                current.expected.append(line.rstrip("\n"))
            pos += len(line)
        if current is not None:
            current.span = (current.span[0], pos)
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """`...` in expected matches any run of lines (also none)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        rest = expected[1:]
        return any(matches(rest, actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def refreshed(expected: list[str], actual: list[str]) -> list[str]:
    """New expected output for --update-goldens: the real output, keeping a page's `...` cut."""
    if "..." not in expected:
        return actual
    i = expected.index("...")
    head, tail = i, len(expected) - i - 1
    if head + tail >= len(actual):
        return actual
    return actual[:head] + ["..."] + (actual[len(actual) - tail:] if tail else [])


@pytest.fixture(scope="module")
def justo_schema() -> str:
    return (ROOT / "examples" / "justoai" / "schema.sql").read_text()


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "project"
    ws.mkdir()
    shutil.copy(ROOT / "indexes.yaml", ws / "indexes.yaml")
    shutil.copytree(ROOT / "examples", ws / "examples")
    shutil.copytree(ROOT / "schema", ws / "schema")
    return ws


def run_page(page: Path, dsn: str, run_sql, ws: Path) -> list[tuple[Step, list[str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "NO_COLOR",
                                                                     "RECONCILER_DEBUG"))}
    env.update({"DATABASE_URL": dsn, "NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb",
                "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")})
    results = []
    for step in steps(page):
        if step.kind == "sql":
            run_sql(dsn, step.text)
            continue
        r = subprocess.run(["bash", "-c", step.text], cwd=ws, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300, stdin=subprocess.DEVNULL)
        raw = r.stdout.rstrip()
        results.append((step, [x.rstrip() for x in raw.split("\n")] if raw else []))
    return results


@pytest.mark.parametrize("page", [p for p in PAGES if FENCE.search(p.read_text())], ids=lambda p: p.name)
def test_console_blocks_show_real_output(page, dsn, run_sql, justo_schema, tmp_path, request):
    run_sql(dsn, justo_schema)
    results = run_page(page, dsn, run_sql, workspace(tmp_path))
    if request.config.getoption("--update-goldens"):
        if "pg18" in request.node.nodeid:   # one server writes the pages
            text = page.read_text()
            for step, actual in sorted(results, key=lambda r: -r[0].span[0]):
                block = "".join(x + "\n" for x in refreshed(step.expected, actual))
                text = text[:step.span[0]] + block + text[step.span[1]:]
            page.write_text(text)
        return
    bad = [(s.text, "\n".join(s.expected), "\n".join(a)) for s, a in results
           if not matches([x if x == "..." else mask(x) for x in s.expected], [mask(x) for x in a])]
    assert not bad, "\n\n".join(f"$ {c}\n--- page shows:\n{e}\n--- the tool printed:\n{a}" for c, e, a in bad)


def documented_commands() -> set[str]:
    ran = set()
    for p in PAGES:
        for s in steps(p):
            if s.kind == "cmd":
                ran.update(re.findall(r"(?:^|[\s;&|(])reconciler (?:-[qv]+ |--no-color )*([a-z][\w-]*)", s.text))
    return ran


@pytest.mark.parametrize("command", sorted(cli.all_commands()))
def test_every_command_is_documented_and_run(command):
    page = (DOCS / "commands.md").read_text()
    assert re.search(rf"^## `reconciler {command}`", page, re.M), \
        f"docs/commands.md has no section `## \\`reconciler {command}\\``"
    assert command in documented_commands(), f"no ```console block in docs/ runs `reconciler {command}`"


def test_spec_reference_is_generated_from_the_json_schema():
    from reconciler.spec.reference import spec_reference

    assert (DOCS / "spec-reference.md").read_text() == spec_reference(), \
        "docs/spec-reference.md is stale: run `python -m reconciler.spec.reference > docs/spec-reference.md`"


def test_nav_lists_every_page():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def files(items):
        for it in items:
            v = list(it.values())[0] if isinstance(it, dict) else it
            if isinstance(v, list):
                yield from files(v)
            else:
                yield v

    listed = set(files(nav))
    assert listed == {p.name for p in PAGES}, (listed ^ {p.name for p in PAGES})


def test_docs_steps_parser_reads_a_page():
    """The harness itself: commands, outputs and wildcards are read as intended."""
    page = DOCS / "commands.md"
    ss = [s for s in steps(page) if s.kind == "cmd"]
    assert ss and all(s.text for s in ss)
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"]) and not matches(["a", "...", "z"], ["a", "b"])
    assert matches(["..."], []) and not matches([], ["x"])


# -- recipes: the CI files shown in docs/ci.md, run line by line ---------------------------------

RECIPE = re.compile(r"<!-- docs-test: recipe (\w+) -->\n```yaml\n(.*?)^```", re.S | re.M)
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def recipes() -> list[tuple[str, str, str]]:
    out = []
    for page in PAGES:
        for i, m in enumerate(RECIPE.finditer(page.read_text())):
            out.append((f"{page.stem}-{m.group(1)}-{i}", m.group(1), m.group(2)))
    return out


def _expr(text: str, dsn: str) -> str:
    """GitHub expressions the recipes use: secrets are the test database, the rest is empty."""
    return EXPR.sub(lambda m: dsn if m.group(1).startswith("secrets.") else "", str(text))


def recipe_steps(kind: str, doc: dict, dsn: str) -> list[tuple[str, dict]]:
    """(shell line, extra environment) in the order CI runs them. Installing reconciler is
    skipped (it is installed here); the reconciler action runs its script as action.yml does."""
    out: list[tuple[str, dict]] = []
    if kind == "github":
        for job in doc["jobs"].values():
            env = {k: _expr(v, dsn) for k, v in (job.get("env") or {}).items()}
            for step in job["steps"]:
                uses = step.get("uses", "")
                if uses and "/reconciler@" in uses:
                    inputs = step.get("with") or {}
                    assert set(inputs) <= set(ACTION["inputs"]), set(inputs) - set(ACTION["inputs"])
                    action_env = {"INPUT_" + k.upper().replace("-", "_"): _expr(v, dsn) for k, v in inputs.items()}
                    action_env["INPUT_COMMENT"] = "false"
                    out.append((f"{sys.executable} {ROOT / 'action' / 'reconciler_action.py'}", {**env, **action_env}))
                elif "run" in step and "if" not in step:
                    for line in step["run"].splitlines():
                        if line.strip() and not line.startswith("pip install"):
                            out.append((_expr(line, dsn), env))
    elif kind == "k8s":
        # a CronJob: its container's command and args, with its environment; a secret is the test
        # database, a directory the node exporter reads is a temporary one (TEXTFILE_DIR)
        container = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: (dsn if "valueFrom" in e else str(e["value"])) for e in container.get("env", [])}
        argv = list(container.get("command", [])) + list(container.get("args", []))
        assert argv[:2] == ["/bin/sh", "-c"], "the recipe's container runs a shell line"
        out.append((argv[2], env))
    elif kind == "gitlab":
        templates = {k: v for k, v in doc.items() if k.startswith(".")}
        jobs = [(k, v) for k, v in doc.items() if not k.startswith(".") and isinstance(v, dict) and "script" in v]
        jobs.sort(key=lambda kv: doc["stages"].index(kv[1]["stage"]))
        for _, job in jobs:
            base = templates.get(job.get("extends", ""), {})
            for line in (base.get("before_script") or []) + job.get("before_script", []) + job["script"]:
                if not line.startswith("pip install"):
                    out.append((line, {}))
    return out


class StandInPushgateway:
    """A STAND-IN for Prometheus' Pushgateway on 127.0.0.1: it records what is POSTed or PUT
    to /metrics/job/NAME (its push API), so a recipe's push is checked for real."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _push(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                received.append((self.path, body))
                self.send_response(200 if self.path.startswith("/metrics/job/") else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _push

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("recipe", recipes(), ids=lambda r: r[0])
def test_ci_recipes_run(recipe, dsn, run_sql, justo_schema, tmp_path):
    _, kind, text = recipe
    run_sql(dsn, justo_schema)
    ws = workspace(tmp_path)
    summary = tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "GITHUB_", "INPUT_"))}
    env.update({"DATABASE_URL": dsn, "NO_COLOR": "1", "GITHUB_STEP_SUMMARY": str(summary),
                "RUNNER_TEMP": str(tmp_path), "PATH": os.path.dirname(sys.executable) + os.pathsep + env["PATH"]})
    lines = recipe_steps(kind, yaml.safe_load(text), dsn)
    assert lines, "a recipe with nothing to run"
    pushgateway = StandInPushgateway()
    for line, extra in lines:
        if "PUSHGATEWAY_URL" in extra:
            extra = {**extra, "PUSHGATEWAY_URL": pushgateway.url}
        r = subprocess.run(["bash", "-c", line], cwd=ws, env={**env, **extra}, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
    pushgateway.close()
    if any("PUSHGATEWAY_URL" in extra for _, extra in lines):
        assert pushgateway.received, "the recipe pushed nothing"
        path, body = pushgateway.received[-1]
        job = path.rsplit("/", 1)[-1]   # reconciler_drift, reconciler_health: the metrics of that command
        assert path.startswith("/metrics/job/reconciler_") and f"\n{job}_" in "\n" + body, (path, body)
    if any("apply" in line for line, _ in lines):
        # the recipe deployed: the database now holds the spec's 30 indexes, and plans as in sync
        names = run_sql(dsn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE "
                             "'%_pkey' AND indexname NOT LIKE '%_key'")
        assert names == [(30,)]
