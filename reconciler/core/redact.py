"""Remove passwords from text before it is shown. Pure."""
from __future__ import annotations

import re

_PASSWORD = re.compile(r"(password\s*=\s*)\S+|(://[^:/@]*:)[^@]*(@)", re.I)


def scrub(text: str) -> str:
    """Remove any password from a message or DSN before it is shown."""
    return _PASSWORD.sub(lambda m: (m.group(1) + "***") if m.group(1) else (m.group(2) + "***" + m.group(3)), text)
