"""core.lifetime: what a command keeps leaves the collector's scans, only in its own process."""
from __future__ import annotations

import gc
import subprocess
import sys

from reconciler.core.lifetime import long_lived


def test_long_lived_does_nothing_in_a_callers_process():
    before = gc.get_freeze_count()
    with long_lived():
        kept = [{"n": i} for i in range(1000)]
        assert gc.isenabled()
    assert gc.get_freeze_count() == before and gc.isenabled() and kept


CODE = r"""
import gc, threading
from reconciler.core import lifetime
lifetime.own_process()
with lifetime.long_lived():
    assert not gc.isenabled()
    kept = [{"n": i} for i in range(1000)]
assert gc.isenabled() and gc.get_freeze_count() >= 1000, gc.get_freeze_count()
frozen = gc.get_freeze_count()
seen = []
def worker():
    with lifetime.long_lived():          # off the main thread: nothing paused, nothing frozen
        seen.append(gc.isenabled())
        more = [{"n": i} for i in range(1000)]
t = threading.Thread(target=worker); t.start(); t.join()
assert seen == [True] and gc.get_freeze_count() == frozen
gc.disable()
with lifetime.long_lived():
    pass
assert not gc.isenabled()                # a caller's pause is kept
print("ok")
"""


def test_long_lived_freezes_in_the_commands_own_process_on_its_main_thread():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_the_reconciler_process_owns_itself():
    """`main()` as the console entry point (no argv) claims the process; called with argv
    (a test, a library caller) it does not."""
    from reconciler.core import lifetime
    from reconciler.cli.main import main

    try:
        main(["--version"])
    except SystemExit:
        pass
    assert lifetime._owned is False
    code = ("import sys; sys.argv = ['reconciler', '--version']\n"
            "from reconciler.core import lifetime\nfrom reconciler.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint(lifetime._owned)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().splitlines()[-1] == "True", r.stdout + r.stderr
