"""Entry point: the command group with every command registered, and the one place errors
become exit codes and one-line messages."""
from __future__ import annotations

import gc
import logging
import os
import sys
import time

import click

from ..core.lifetime import own_process
from ..errors import ReconcilerError
from .group import cli
from .options import EXIT_ERROR, EXIT_OK, OUTPUT, _echo_err, detail

__all__ = ["cli", "main"]


def main(argv=None) -> None:
    """Entry point: run the group, print one line per error, never a traceback (except an
    unexpected error under -v or RECONCILER_DEBUG)."""
    started = time.monotonic()
    # The cyclic collector at its defaults (a young collection every 700 new objects, a full one
    # after 100 young ones) scans the long-lived objects a run builds (spec, catalog: a million
    # for 14,000 indexes) again and again: a third of a large plan's CPU. Young collections stay
    # frequent enough to free sqlglot's cyclic trees; full ones become rare.
    gc.set_threshold(50_000, 20, 100)
    if argv is None:
        from .argv import scrub_argv

        scrub_argv()   # a password in -d: out of `ps` as early as we can
        # Startup builds tens of thousands of long-lived objects (modules, classes, the spec) and
        # hardly any cyclic garbage, yet at the default threshold (700) the collector walked
        # them ~120 times during `verify` (113 young, 10 middle, 1 full pass: 30-45 ms of CPU,
        # measured). Collect young objects every 100,000 allocations: the same garbage found,
        # in far fewer passes; at most that many objects wait for it.
        gc.set_threshold(100_000, 20, 10)
        # What this one command builds to keep (spec, catalog snapshot) may leave the
        # collector's scans for good (core.lifetime); never in a caller's process
        own_process()
    # psycopg logs what it ignores while cleaning up after an error (a pipeline it aborts):
    # the error itself is what we print, once
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)
    try:
        rv = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
        detail(f"done in {time.monotonic() - started:.2f}s")
    except SystemExit:
        # The command decided the exit code; the process ends now. Interpreter shutdown would
        # run full collections over every object still tracked (after `health` on 12,000
        # indexes: ~0.1 s of CPU, measured) and find nothing worth it: frozen, they are skipped
        # (atexit handlers still run; Python never promised to finalize what is alive at exit).
        if argv is None:
            gc.freeze()
        raise
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        _echo_err("aborted")
        sys.exit(EXIT_ERROR)
    except click.ClickException as e:
        _echo_err(f"error: {e.format_message()}")
        if isinstance(e, click.UsageError) and e.ctx is not None:
            _echo_err(f"hint: see `{e.ctx.command_path} --help`")
        sys.exit(EXIT_ERROR)
    except ReconcilerError as e:
        _echo_err(f"error: {e.message}")
        if e.hint:
            _echo_err(f"hint: {e.hint}")
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _echo_err("interrupted")
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
    except Exception as e:  # psycopg and friends: still one line, never a traceback
        import psycopg

        if isinstance(e, psycopg.errors.LockNotAvailable):
            _echo_err("error: another session holds a lock on a managed table (lock timeout); nothing changed")
            _echo_err("hint: try again later")
            sys.exit(EXIT_ERROR)
        if isinstance(e, psycopg.errors.QueryCanceled):
            _echo_err("error: reading the catalog took longer than the statement timeout (another session may hold "
                      "a lock on a managed table); nothing changed")
            _echo_err("hint: try again later, or raise --statement-timeout")
            sys.exit(EXIT_ERROR)
        from ..core.redact import scrub

        _echo_err(f"error: {type(e).__name__}: {scrub(str(e)).strip().splitlines()[0] if str(e).strip() else ''}")
        if os.environ.get("RECONCILER_DEBUG") or OUTPUT.verbose:
            raise
        sys.exit(EXIT_ERROR)
    if argv is None:
        gc.freeze()   # as for SystemExit above
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)

