"""The logic of the reconciler GitHub Action (action.yml): run reconciler, post or update one
sticky pull-request comment, set the step outputs, fail on blocking hazards.

Standard library only; reconciler itself runs as a subprocess, exactly as from a shell. Reads
the inputs from INPUT_* variables and GitHub's own variables (GITHUB_EVENT_PATH,
GITHUB_REPOSITORY, GITHUB_API_URL, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP).

Exit status: 0 done (changes or not), 1 reconciler failed or the plan has blocking hazards
that allow-hazard does not allow. A comment that cannot be posted (a pull request from a fork
gets a read-only token) is a warning, not a failure: the plan is still in the step summary.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

MARKER = "<!-- reconciler-action:{key} -->"
MAX_COMMENT = 65000  # GitHub refuses comments over 65,536 characters


def lines(name: str) -> list[str]:
    return [x.strip() for x in os.environ.get(name, "").replace(",", "\n").splitlines() if x.strip()]


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    print("$ " + " ".join(args), flush=True)
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    sys.stderr.write(r.stderr)
    return r


def set_outputs(values: dict[str, str]) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        for k, v in values.items():
            print(f"output {k}={v}")
        return
    with open(path, "a") as fh:
        for k, v in values.items():
            fh.write(f"{k}={v}\n")


def append_summary(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a") as fh:
            fh.write(markdown + "\n")


def pull_request_number() -> int | None:
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).exists():
        return None
    event = json.loads(Path(path).read_text())
    pr = event.get("pull_request") or {}
    if pr.get("number"):
        return int(pr["number"])
    issue = event.get("issue") or {}  # issue_comment on a pull request
    return int(issue["number"]) if issue.get("pull_request") and issue.get("number") else None


class GitHub:
    def __init__(self, api: str, repo: str, token: str):
        self.api, self.repo, self.token = api.rstrip("/"), repo, token

    def call(self, method: str, path: str, body: dict | None = None):
        req = urllib.request.Request(self.api + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def find_comment(self, number: int, marker: str) -> dict | None:
        page = 1
        while True:
            batch = self.call("GET", f"/repos/{self.repo}/issues/{number}/comments?per_page=100&page={page}")
            for c in batch:
                if marker in (c.get("body") or ""):
                    return c
            if len(batch) < 100:
                return None
            page += 1

    def upsert_comment(self, number: int, marker: str, body: str) -> dict:
        existing = self.find_comment(number, marker)
        if existing is not None:
            return self.call("PATCH", f"/repos/{self.repo}/issues/comments/{existing['id']}", {"body": body})
        return self.call("POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": body})


def main() -> int:
    command = os.environ.get("INPUT_COMMAND", "plan").strip() or "plan"
    specs = lines("INPUT_SPEC") or ["indexes.yaml"]
    schema_sql = os.environ.get("INPUT_SCHEMA_SQL", "").strip()
    allowed = set(lines("INPUT_ALLOW_HAZARD"))
    env = dict(os.environ)
    dsn = os.environ.get("INPUT_DATABASE_URL", "").strip()
    if dsn:
        env["DATABASE_URL"] = dsn   # not on the command line: it would show in the process list
    env["NO_COLOR"] = "1"

    args = ["reconciler", command]
    for s in specs:
        args += ["-f", s]
    if schema_sql:
        args += ["--schema-sql", schema_sql]
    for s in lines("INPUT_SELECT"):
        args += ["--select", s]

    outputs = {"has-changes": "false", "hazards": "", "blocking-hazards": "", "plan-file": "", "comment-url": ""}
    blocking: list[str] = []
    if command == "plan":
        temp = os.environ.get("RUNNER_TEMP") or tempfile.gettempdir()
        plan_file = str(Path(temp) / "reconciler-plan.json")
        r = run(args + ["--format", "markdown", "--out", plan_file, "--detailed-exitcode"], env)
        ok = r.returncode in (0, 2)
        body = r.stdout
        if ok:
            shown = run(["reconciler", "show", plan_file, "--format", "json"], env)
            ok = shown.returncode == 0
            if ok:
                doc = json.loads(shown.stdout)
                hazards = [h for c in doc["changes"] for h in c["hazards"]]
                codes = sorted({h["code"] for h in hazards})
                blocking = sorted({h["code"] for h in hazards if h["blocking"]} - allowed)
                outputs.update({"has-changes": str(bool(doc["changes"])).lower(), "hazards": ",".join(codes),
                                "blocking-hazards": ",".join(blocking), "plan-file": plan_file})
    else:
        r = run(args, env)
        ok = r.returncode in (0, 2)
        outputs["has-changes"] = str(r.returncode == 2).lower()
        body = f"### reconciler {command}\n\n```text\n{r.stdout.rstrip()}\n```\n"
    if not ok:
        err = (r.stderr.strip() or r.stdout.strip() or f"exit {r.returncode}")
        body = f"### reconciler {command} failed\n\n```text\n{err}\n```\n"

    if blocking:
        body += ("\n> [!CAUTION]\n> Blocking hazards: " + ", ".join(f"`{b}`" for b in blocking)
                 + ". `reconciler apply` refuses this plan unless each is allowed with `--allow-hazard`.\n")
    key = os.environ.get("INPUT_COMMENT_KEY", "").strip() or f"{command}:{','.join(specs)}"
    marker = MARKER.format(key=key)
    comment = f"{marker}\n{body}"
    if len(comment) > MAX_COMMENT:
        comment = comment[:MAX_COMMENT - 200] + "\n\n…cut: the full output is in the job's step summary.\n"
    append_summary(body)

    number = pull_request_number()
    if os.environ.get("INPUT_COMMENT", "true").strip().lower() == "true" and number is not None:
        gh = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"), os.environ["GITHUB_REPOSITORY"],
                    os.environ.get("GITHUB_TOKEN", ""))
        try:
            posted = gh.upsert_comment(number, marker, comment)
            outputs["comment-url"] = posted.get("html_url", "") if isinstance(posted, dict) else ""
        except (urllib.error.URLError, OSError, ValueError) as e:
            print(f"::warning::reconciler: could not post the pull-request comment: {e}")

    set_outputs(outputs)
    if not ok:
        print(f"::error::reconciler {command} failed: {(r.stderr.strip().splitlines() or ['?'])[0]}")
        return 1
    if blocking:
        print(f"::error::the plan has blocking hazards: {', '.join(blocking)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
