"""Carrying out a plan on a live database: the executor, its events, its waiting."""
from __future__ import annotations




