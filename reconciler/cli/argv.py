"""Hide a password given on the command line (`-d postgresql://user:PASSWORD@host/db`) from
other users' `ps` and /proc/PID/cmdline, where the platform allows.

On Linux a process's argument strings live in its own memory (between `arg_start` and
`arg_end` of /proc/self/stat), and /proc/PID/cmdline reads them from there: overwriting the
password's bytes in place (the trick setproctitle uses) hides it from then on. The moments
before this runs remain visible, which is why --help and the docs say to use $DATABASE_URL,
PGPASSWORD or ~/.pgpass instead. Elsewhere this does nothing.
"""
from __future__ import annotations

import re
import sys

# Within one argument: NUL separates them (and must stay, or the kernel reads the area as one
# rewritten title).
_SPANS = (re.compile(rb"(?i)password\s*=\s*('(?:[^'\\\x00]|\\[^\x00])*'?|[^\s&\x00]+)"),
          re.compile(rb"\w[\w+.-]*://[^/?#@\s:\x00]*:([^\s\x00]*)@"))


def scrub_argv() -> bool:
    """Overwrite every password in this process's argument area with '*'. True when done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])   # fields 48 and 49: arg_start, arg_end
        with open("/proc/self/cmdline", "rb") as fh:
            cmdline = fh.read()
        if not start or end <= start or len(cmdline) != end - start:
            return False
        if ctypes.string_at(start, end - start) != cmdline:
            return False   # not the layout we expect: touch nothing
        for pattern in _SPANS:
            for m in pattern.finditer(cmdline):
                a, b = m.span(1)
                if b > a:
                    ctypes.memmove(start + a, b"*" * (b - a), b - a)
        return True
    except (OSError, ValueError, IndexError):
        return False
