"""The `reconciler` command, click only: options, commands of a few lines, exit codes.

Exit codes (every command):
  0  success / in sync
  1  any error (bad spec, bad flag, unreachable database, refused change, stale plan)
  2  changes present (`drift` always, `plan` with --detailed-exitcode)
Only this package imports click; every failure a user can cause arrives as a ReconcilerError
and is printed once, as one line plus an optional hint, with no traceback (`main`).
"""
from __future__ import annotations

from .main import cli, main

__all__ = ["cli", "main"]
