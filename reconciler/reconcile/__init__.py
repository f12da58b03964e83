"""What changes and how: diff (desired vs live → Changes), naming of temporary indexes,
planner (Changes → Operations with timeouts and hazards), the plan file. Pure."""
from __future__ import annotations




