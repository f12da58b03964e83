"""One module per command's workflow (no click): the library calls the CLI makes."""
from __future__ import annotations




