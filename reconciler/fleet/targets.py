"""The targets file (`--targets targets.yaml`): which databases a fleet run covers.

```yaml
version: 1
defaults:                       # optional: every target starts from these
  service: prod                 # a libpq service (pg_service.conf), or
  labels: {env: prod}
targets:
  - name: eu-1
    dsn_env: EU1_DATABASE_URL   # the DSN is read from this environment variable at run time
    labels: {region: eu}
  - name: us-1
    host: db.us.internal        # non-secret connection keywords: host, port, dbname, user, sslmode
    dbname: app
    labels: {region: us}
  - name: tenants               # a cluster: its databases are the targets, found by a query
    dsn_env: TENANTS_ADMIN_URL
    discover: SELECT datname FROM pg_database WHERE datname LIKE 'tenant\\_%'
```

A password never belongs in this file (it is reviewed, committed, printed in CI logs): a key
that can carry one (`dsn`, `url`, `password`, ...) or a value that looks like a connection
string is refused; the password comes from the environment variable, the service file or
`~/.pgpass`. An entry with `discover` is not a target itself: its query (read-only) lists
databases, each becomes the target `NAME/DBNAME` with the entry's connection and labels
(other columns of the query become more labels). Every error names file:line.

Pure: parses text and builds targets from rows it is handed; connecting is the caller's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ReconcilerError

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]*")       # no '/': discovered targets are SEED/DBNAME
LABEL_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]*")
ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CONNECTION_KEYS = ("service", "host", "port", "dbname", "user", "sslmode")
# keys that would put a secret (or a whole DSN, which may hold one) into a reviewed file
SECRET_KEYS = {"dsn", "url", "uri", "password", "passwd", "pass", "conninfo", "connection", "connection_string",
               "database_url", "secret", "pgpassword"}
_SECRET_VALUE = re.compile(r"://|password\s*=", re.I)


class TargetsError(ReconcilerError):
    """The targets file is malformed: the message names file:line and the key."""


class TargetError(ReconcilerError):
    """One target cannot be used (its environment variable is not set): that target fails,
    the others go on."""


LabelValue = Union[str, int, float, bool]


class _Connection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dsn_env: str | None = Field(None, description="environment variable holding the DSN (read at run time)")
    service: str | None = Field(None, description="libpq service name (pg_service.conf)")
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    dbname: str | None = None
    user: str | None = None
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    labels: dict[str, LabelValue] = Field(default_factory=dict)

    @field_validator("dsn_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is not None and not ENV_VAR.fullmatch(v):
            raise ValueError(f"{v!r} is not an environment variable name (letters, digits, '_')")
        return v

    @field_validator("service", "host", "dbname", "user")
    @classmethod
    def _plain(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.strip() or any(ord(c) < 32 for c in v):
            raise ValueError("must be a non-empty single-line value")
        if _SECRET_VALUE.search(v):
            raise ValueError("looks like a connection string; put a DSN in an environment variable (dsn_env), "
                             "never in this file")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict) -> dict:
        for k, val in v.items():
            if not isinstance(k, str) or not LABEL_KEY.fullmatch(k):
                raise ValueError(f"label key {k!r}: use letters, digits, '_', '.', ':', '/', '-'")
            if isinstance(val, str) and any(ord(c) < 32 for c in val):
                raise ValueError(f"label {k!r}: the value must be one line")
        return v


class _Defaults(_Connection):
    pass


class _Entry(_Connection):
    name: str = Field(description="the target's name (letters, digits, '_', '.', ':', '@', '+', '-')")
    discover: str | None = Field(None, description="SQL run on this connection (read-only) listing databases: "
                                                  "each becomes the target NAME/DBNAME")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.fullmatch(v):
            raise ValueError(f"{v!r}: a target name uses letters, digits, '_', '.', ':', '@', '+', '-' "
                             "('/' is kept for discovered targets)")
        return v

    @field_validator("discover")
    @classmethod
    def _sql(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("empty query")
        return v


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    defaults: _Defaults = Field(default_factory=_Defaults)
    targets: list[_Entry] = Field(min_length=1)


def _label_text(v: LabelValue) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass(frozen=True)
class Target:
    """One database of the fleet, or (with `discover`) a cluster whose databases are targets."""

    name: str
    where: str                                   # file:line of its entry (a discovered one: its seed's)
    labels: tuple[tuple[str, str], ...] = ()
    dsn_env: str | None = None
    service: str | None = None
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    user: str | None = None
    sslmode: str | None = None
    discover: str | None = None
    seed: str | None = None                      # the entry whose query listed it

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def connection(self, environ: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """(base DSN, keyword overrides) for libpq: the DSN from the environment variable, if
        any, and this target's keywords over it. Raises TargetError when the variable is not set."""
        base = ""
        if self.dsn_env:
            base = environ.get(self.dsn_env, "")
            if not base.strip():
                raise TargetError(f"target {self.name!r} ({self.where}): environment variable {self.dsn_env} "
                                  "is not set or empty", f"export {self.dsn_env}=postgresql://... before the run")
        overrides = {k: str(getattr(self, k)) for k in CONNECTION_KEYS if getattr(self, k) is not None}
        return base, overrides


@dataclass(frozen=True)
class TargetsFile:
    file: str
    targets: tuple[Target, ...]          # databases named in the file
    seeds: tuple[Target, ...] = ()       # entries with `discover`: their databases are targets

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.targets + self.seeds]


def load_targets(path: str) -> TargetsFile:
    """Read and check a targets file."""
    from ..spec.files import read_input

    text = read_input(path, "targets file", limit=4 * 1024 * 1024, error=TargetsError)
    return parse_targets(text, path)


def parse_targets(text: str, file: str = "targets.yaml") -> TargetsFile:
    data, lines = _yaml_with_lines(text, file)
    if not isinstance(data, dict):
        raise TargetsError(f"{file}:1: expected a mapping with 'version' and 'targets'")
    _refuse_secrets(data, lines, file)
    try:
        model = _File.model_validate(data)
    except ValidationError as e:
        raise TargetsError(_first_error(e, data, lines, file)) from None
    d = model.defaults
    targets: list[Target] = []
    seeds: list[Target] = []
    seen: dict[str, str] = {}
    for i, e in enumerate(model.targets):
        where = f"{file}:{lines.get(('targets', i), 1)}"
        if e.name in seen:
            raise TargetsError(f"{where}: targets[{i}].name: {e.name!r} is already the name of the target at "
                               f"{seen[e.name]}")
        seen[e.name] = where
        labels = {**{k: _label_text(v) for k, v in d.labels.items()}, **{k: _label_text(v) for k, v in e.labels.items()}}
        conn = {k: getattr(e, k) if getattr(e, k) is not None else getattr(d, k) for k in ("dsn_env",) + CONNECTION_KEYS}
        t = Target(e.name, where, tuple(sorted(labels.items())), discover=e.discover, **conn)
        (seeds if e.discover else targets).append(t)
    return TargetsFile(file, tuple(targets), tuple(seeds))


def discovered_targets(seed: Target, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Target]:
    """The targets a seed's query listed: one per row, named SEED/DBNAME, with the seed's
    connection (dbname replaced) and labels; the row's other columns are more labels (the
    seed's own labels win). The database name is the column `dbname`, or the only column."""
    cols = list(columns)
    if "dbname" in cols:
        at = cols.index("dbname")
    elif len(cols) == 1:
        at = 0
    else:
        raise TargetError(f"target {seed.name!r} ({seed.where}): discover: the query returns columns "
                          f"{', '.join(cols) or '(none)'}; name the database column `dbname` (or return one column)")
    extra = [(j, c) for j, c in enumerate(cols) if j != at and LABEL_KEY.fullmatch(c or "")]
    out: list[Target] = []
    seen: set[str] = set()
    for row in rows:
        db = row[at]
        if db is None or not isinstance(db, str) or not db or "\0" in db:
            raise TargetError(f"target {seed.name!r} ({seed.where}): discover: a row has no database name ({db!r})")
        if db in seen:
            raise TargetError(f"target {seed.name!r} ({seed.where}): discover: database {db!r} is listed twice")
        seen.add(db)
        labels = {c: _label_text(row[j]) for j, c in extra if row[j] is not None}
        labels.update(seed.label_map)
        out.append(Target(f"{seed.name}/{db}", seed.where, tuple(sorted(labels.items())), seed.dsn_env,
                          seed.service, seed.host, seed.port, db, seed.user, seed.sslmode, None, seed.name))
    return out


# ---------------------------------------------------------------------------------------------
# reading


def _yaml_with_lines(text: str, file: str) -> tuple[Any, dict]:
    """The document and the line of each key, read like a spec: no alias, merge key or deep
    nesting, one error with file:line (`spec.load.read_yaml`)."""
    from ..spec.load import read_yaml

    data, lines = read_yaml(text, file, TargetsError)
    if data is None:
        raise TargetsError(f"{file}:1: the file is empty; expected 'version: 1' and 'targets:'")
    return data, lines


def _refuse_secrets(data: dict, lines: dict, file: str) -> None:
    places = [(("defaults",), data.get("defaults"))]
    targets = data.get("targets")
    if isinstance(targets, list):
        places += [(("targets", i), t) for i, t in enumerate(targets)]
    for path, m in places:
        if not isinstance(m, dict):
            continue
        for k in m:
            if isinstance(k, str) and k.lower() in SECRET_KEYS:
                line = lines.get(path + (k,), 1)
                raise TargetsError(f"{file}:{line}: {_dotted(path + (k,))}: a targets file never holds a DSN or a "
                                   "password; name an environment variable (dsn_env: VAR) or a libpq service "
                                   "(service: NAME), and keep the password there or in ~/.pgpass")


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top)"


def _first_error(e: ValidationError, data: dict, lines: dict, file: str) -> str:
    err = e.errors()[0]
    path: list = []
    node: Any = data
    for p in err["loc"]:
        if isinstance(node, dict) and p in node or isinstance(node, list) and isinstance(p, int) and p < len(node):
            path.append(p)
            node = node[p]
        elif isinstance(node, dict) and err["type"] in ("extra_forbidden", "missing"):
            path.append(p)
            break
    t = tuple(path)
    line = 1
    probe = t
    while probe:
        if probe in lines:
            line = lines[probe]
            break
        probe = probe[:-1]
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        allowed = ("name", "dsn_env", *CONNECTION_KEYS, "labels", "discover") if len(t) == 3 and t[0] == "targets" \
            else ("dsn_env", *CONNECTION_KEYS, "labels") if t[:1] == ("defaults",) else ("version", "defaults", "targets")
        msg = f"unknown key {t[-1]!r} (allowed: {', '.join(allowed)})"
    elif err["type"] == "missing":
        msg = f"required key {t[-1]!r} is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{file}:{line}: {_dotted(t)}: {msg}"
