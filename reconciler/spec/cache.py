"""A small content-addressed cache for work that depends only on file contents.

One job: keep the results of parsing and checking a large spec between runs (cron `drift`,
repeated `plan`s), keyed by the exact bytes, the file names and the versions that shape the
result. Parsing YAML and every SQL fragment is most of a no-op plan's time on a 12,000-index
spec. Anything wrong with the cache is a miss, never an error. RECONCILER_NO_CACHE=1 turns
it off; small inputs (< 64 kB) are never cached.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

MIN_BYTES = 64 * 1024
_MISS = object()


def _path(kind: str, parts: tuple[str, ...]) -> Path | None:
    if os.environ.get("RECONCILER_NO_CACHE") or sum(len(p) for p in parts) < MIN_BYTES:
        return None
    from importlib.metadata import version

    import pydantic
    import yaml

    from .. import __version__

    versions = (__version__, pydantic.VERSION, yaml.__version__, version("sqlglot"))
    key = hashlib.sha256("\0".join(versions + (kind,) + parts).encode()).hexdigest()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reconciler"
    return base / f"{kind}-{key[:32]}.pickle"


def get(kind: str, parts: tuple[str, ...]) -> Any:
    """The cached value, or `MISS`."""
    path = _path(kind, parts)
    if path is None or not path.exists():
        return _MISS
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)
    except Exception:  # noqa: BLE001 - a damaged entry is a miss
        return _MISS


def put(kind: str, parts: tuple[str, ...], value: Any) -> None:
    path = _path(kind, parts)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    except (OSError, pickle.PicklingError):
        pass


MISS = _MISS
