"""How data in memory reaches DuckDB: :func:`registered`, the one way (also through
:mod:`jungle.store.db`, which connections come from)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = ["registered"]


@contextmanager
def registered(con, **tables) -> Iterator:
    """Let the block's SQL read each DataFrame or Arrow table under its keyword's name (``FROM batch``).

    The one way data in memory reaches DuckDB: registered for the block, unregistered after it,
    whatever happens. DuckDB reads polars and Arrow data in place, without a copy.
    """
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield con
    finally:
        for name in tables:
            con.unregister(name)
