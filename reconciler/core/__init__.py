"""Frozen values every stage shares: what an index is, what changes, what runs."""
from __future__ import annotations




