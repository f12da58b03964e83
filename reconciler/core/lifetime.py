"""Objects a run keeps to its end (the spec, the catalog snapshot) kept out of the cyclic
garbage collector's scans, in the command's own process.

CPython's collector walks every young container object at each collection, and then again each
time they are promoted: loading a 12,000-entry spec and a 14,000-index catalog builds about a
million tuples, dicts and models that all stay alive and form no garbage, and those walks cost
a tenth of a no-op plan's CPU. Inside `long_lived()` the collector is paused, and on the way out
everything allocated is moved to the permanent generation (`gc.freeze`), which collections
never scan. Reference counting still frees whatever is dropped later; only a reference cycle
made inside the block and dropped after it stays in memory until the process ends.

That is a trade only the process's owner can make: `long_lived()` does nothing until
`own_process()` was called (the `reconciler` command does, tests and library callers do not),
and nothing off the main thread (a fleet's thread pool: pausing and freezing are process-wide).
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_owned = False


def own_process() -> None:
    """This process runs one command and ends: `long_lived` may freeze what it builds."""
    global _owned
    _owned = True


@contextmanager
def long_lived() -> Iterator[None]:
    """Build what lives to the end of the run inside this block (see the module docstring)."""
    if not _owned or threading.current_thread() is not threading.main_thread():
        yield
        return
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()
