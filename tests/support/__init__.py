"""Helpers the test files share: one CLI runner (`cli`), one index builder (`build`), the table
DDL several tests load (`ddl`). Plain functions, no fixtures: conftest.py keeps those."""
