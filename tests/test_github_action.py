"""The GitHub Action's logic (`action/reconciler_action.py`), run as the composite action runs
it: GitHub's variables, a recorded `pull_request` event (tests/data/github), reconciler on a
real PostgreSQL.

The GitHub API is a STAND-IN: a small local HTTP server (127.0.0.1) that keeps issue comments
in memory and answers the four calls the action makes (list comments, create, update), the
way api.github.com documents them. Nothing else can be reached from here; the stand-in
proves the requests the script sends, not GitHub's own behaviour.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "action" / "reconciler_action.py"
EVENT = ROOT / "tests" / "data" / "github" / "pull_request_synchronize.json"
TOKEN = "ghs_standin_token"


class StandInGitHub:
    """Issue comments of one repository, in memory, behind the REST paths the action uses."""

    def __init__(self, repo: str, forbid_writes: bool = False):
        self.repo, self.forbid_writes = repo, forbid_writes
        self.comments: dict[int, dict] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.next_id = 1000
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n)) if n else None

            def handle_one(self, method: str) -> None:
                outer.requests.append((method, self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._reply(401, {"message": "Bad credentials"})
                m = re.fullmatch(rf"/repos/{outer.repo}/issues/(\d+)/comments\?per_page=(\d+)&page=(\d+)", self.path)
                if method == "GET" and m:
                    number, per, page = map(int, m.groups())
                    mine = [c for c in outer.comments.values() if c["issue"] == number]
                    return self._reply(200, mine[(page - 1) * per: page * per])
                if outer.forbid_writes and method in ("POST", "PATCH"):
                    return self._reply(403, {"message": "Resource not accessible by integration"})
                m = re.fullmatch(rf"/repos/{outer.repo}/issues/(\d+)/comments", self.path)
                if method == "POST" and m:
                    outer.next_id += 1
                    c = {"id": outer.next_id, "issue": int(m.group(1)), "body": self._body()["body"],
                         "html_url": f"https://github.com/{outer.repo}/pull/{m.group(1)}#issuecomment-{outer.next_id}"}
                    outer.comments[c["id"]] = c
                    return self._reply(201, c)
                m = re.fullmatch(rf"/repos/{outer.repo}/issues/comments/(\d+)", self.path)
                if method == "PATCH" and m and int(m.group(1)) in outer.comments:
                    c = outer.comments[int(m.group(1))]
                    c["body"] = self._body()["body"]
                    return self._reply(200, c)
                return self._reply(404, {"message": "Not Found"})

            def do_GET(self):
                self.handle_one("GET")

            def do_POST(self):
                self.handle_one("POST")

            def do_PATCH(self):
                self.handle_one("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


REPO = json.loads(EVENT.read_text())["repository"]["full_name"]


def run_action(tmp_path: Path, api: StandInGitHub | None, event: Path | None = EVENT, **inputs) -> tuple[
        subprocess.CompletedProcess, dict, str]:
    out, summary = tmp_path / "github_output", tmp_path / "step_summary"
    out.write_text("")
    summary.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "INPUT_", "GITHUB_"))}
    env.update({
        "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": api.url if api else "http://127.0.0.1:9",
        "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_TOKEN": TOKEN,
        "RUNNER_TEMP": str(tmp_path), "GITHUB_EVENT_NAME": "pull_request",
    })
    if event is not None:
        env["GITHUB_EVENT_PATH"] = str(event)
    for k, v in inputs.items():
        env["INPUT_" + k.upper()] = v
    r = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=180, stdin=subprocess.DEVNULL)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return r, outputs, summary.read_text()


SPEC = textwrap.dedent("""
    version: 1
    indexes:
      - name: t_a_idx
        table: t
        columns: [a]
""").lstrip()


def test_plan_posts_one_sticky_comment_and_updates_it(tmp_path, dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (a int, b int)")
    (tmp_path / "indexes.yaml").write_text(SPEC)
    with StandInGitHub(REPO) as gh:
        gh.comments[7] = {"id": 7, "issue": 2, "body": "LGTM", "html_url": "x"}   # someone else's comment
        r, outputs, summary = run_action(tmp_path, gh, database_url=dsn)
        assert r.returncode == 0, r.stdout + r.stderr
        assert outputs["has-changes"] == "true" and outputs["hazards"] == "INDEX_BUILD"
        assert outputs["blocking-hazards"] == "" and Path(outputs["plan-file"]).exists()
        ours = [c for c in gh.comments.values() if c["id"] != 7]
        assert len(ours) == 1 and "`t_a_idx`" in ours[0]["body"] and "Plan: 1 to create" in ours[0]["body"]
        assert outputs["comment-url"].endswith(f"#issuecomment-{ours[0]['id']}")
        assert "### reconciler plan" in summary
        assert dsn not in r.stdout + r.stderr, "the DSN is passed in the environment, not on the command line"

        # the next push: the same comment is updated, not a second one added
        (tmp_path / "indexes.yaml").write_text(SPEC.replace("[a]", "[a, b]"))
        r, outputs, _ = run_action(tmp_path, gh, database_url=dsn)
        assert r.returncode == 0, r.stderr
        ours = [c for c in gh.comments.values() if c["id"] != 7]
        assert len(ours) == 1 and "(a, b)" in ours[0]["body"]
        assert gh.comments[7]["body"] == "LGTM"
        assert [m for m, _, _ in gh.requests].count("POST") == 1 and ("PATCH" in [m for m, _, _ in gh.requests])
        assert {a for _, _, a in gh.requests} == {f"Bearer {TOKEN}"}

        # in sync: the comment says so, has-changes is false
        run_sql(dsn, "CREATE INDEX t_a_idx ON t (a, b)")
        r, outputs, _ = run_action(tmp_path, gh, database_url=dsn)
        assert r.returncode == 0 and outputs["has-changes"] == "false" and outputs["hazards"] == ""
        assert "No changes" in [c for c in gh.comments.values() if c["id"] != 7][0]["body"]


def test_blocking_hazard_fails_the_check_unless_allowed(tmp_path, dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g; "
                 "CREATE INDEX t_b_idx ON t (b); ANALYZE t")
    # the index is used: dropping it is DROPS_USED_INDEX, a blocking hazard
    # (statistics reach pg_stat_user_indexes when the session flushes them: PostgreSQL 15+)
    run_sql(dsn, "SET enable_seqscan = off; SELECT * FROM t WHERE b = 5; SELECT pg_stat_force_next_flush()")
    data = yaml.safe_load(SPEC)
    data["manage"] = {"prune": True}
    (tmp_path / "indexes.yaml").write_text(yaml.safe_dump(data))
    with StandInGitHub(REPO) as gh:
        r, outputs, _ = run_action(tmp_path, gh, database_url=dsn)
        assert r.returncode == 1, r.stdout + r.stderr
        assert outputs["blocking-hazards"] == "DROPS_USED_INDEX"
        assert "DROPS_USED_INDEX" in outputs["hazards"].split(",")
        assert "::error::the plan has blocking hazards: DROPS_USED_INDEX" in r.stdout
        body = list(gh.comments.values())[0]["body"]
        assert "Blocking hazards: `DROPS_USED_INDEX`" in body
        r, outputs, _ = run_action(tmp_path, gh, database_url=dsn, allow_hazard="DROPS_USED_INDEX")
        assert r.returncode == 0 and outputs["blocking-hazards"] == ""
        assert len(gh.comments) == 1 and "Blocking hazards" not in list(gh.comments.values())[0]["body"]


def test_a_bad_spec_fails_with_its_one_line_error_in_the_comment(tmp_path, dsn):
    (tmp_path / "indexes.yaml").write_text(SPEC.replace("columns", "colums"))
    with StandInGitHub(REPO) as gh:
        r, outputs, _ = run_action(tmp_path, gh, database_url=dsn)
    assert r.returncode == 1
    body = list(gh.comments.values())[0]["body"]
    assert "reconciler plan failed" in body and "indexes.yaml:5: index 't_a_idx': colums: unknown key 'colums'" in body


def test_drift_command_and_no_comment_outside_a_pull_request(tmp_path, dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (a int)")
    (tmp_path / "indexes.yaml").write_text(SPEC)
    push = tmp_path / "push.json"
    push.write_text(json.dumps({"ref": "refs/heads/main", "repository": {"full_name": REPO}}))
    with StandInGitHub(REPO) as gh:
        r, outputs, summary = run_action(tmp_path, gh, event=push, command="drift", database_url=dsn)
    assert r.returncode == 0, r.stderr
    assert outputs["has-changes"] == "true" and gh.requests == []
    assert "### reconciler drift" in summary and "missing" in summary


def test_read_only_token_is_a_warning_not_a_failure(tmp_path, dsn, run_sql):
    """A pull request from a fork gets a token that cannot write comments."""
    run_sql(dsn, "CREATE TABLE t (a int)")
    (tmp_path / "indexes.yaml").write_text(SPEC)
    with StandInGitHub(REPO, forbid_writes=True) as gh:
        r, outputs, summary = run_action(tmp_path, gh, database_url=dsn)
    assert r.returncode == 0
    assert "::warning::reconciler: could not post the pull-request comment" in r.stdout
    assert outputs["has-changes"] == "true" and "### reconciler plan" in summary


def test_action_yml_passes_every_input_to_the_script():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    env = step["env"]
    for name in action["inputs"]:
        if name in ("working-directory", "python-version"):
            continue
        wanted = "GITHUB_TOKEN" if name == "github-token" else "INPUT_" + name.upper().replace("-", "_")
        assert env.get(wanted) == "${{ inputs.%s }}" % name, name
    script_reads = set(re.findall(r'"(INPUT_[A-Z_]+)"', SCRIPT.read_text()))
    assert script_reads == {k for k in env if k.startswith("INPUT_")}
    for out in action["outputs"].values():
        key = re.search(r"steps\.run\.outputs\.([\w-]+)", out["value"]).group(1)
        assert f'"{key}"' in SCRIPT.read_text()


@pytest.fixture(autouse=True)
def _no_network_leak(monkeypatch):
    monkeypatch.delenv("GITHUB_API_URL", raising=False)
