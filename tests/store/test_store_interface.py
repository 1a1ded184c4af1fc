"""`SqliteStore` is one implementation of `store.base.Store`; keep the two in step."""

from __future__ import annotations

import inspect

import pytest

from store import Store
from store.sqlite import SqliteStore

PUBLIC = sorted(
    name
    for name, value in vars(Store).items()
    if (inspect.isfunction(value) or isinstance(value, property))
    and (not name.startswith("_") or name in {"__aenter__", "__aexit__"})
)


def test_the_protocol_covers_the_whole_interface() -> None:
    assert {"accept", "claim_due", "record_receipt", "recover_leases", "due_callbacks"} <= set(
        PUBLIC
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_sqlite_store_has_the_protocols_signature(name: str) -> None:
    declared, implemented = getattr(Store, name), getattr(SqliteStore, name)
    if isinstance(declared, property):
        assert isinstance(implemented, property)
        return
    want = [(p.name, p.kind, p.default) for p in inspect.signature(declared).parameters.values()]
    have = [(p.name, p.kind, p.default) for p in inspect.signature(implemented).parameters.values()]
    assert have == want
    # writes enqueue at call time (plain def returning a future); reads and lifecycle are async
    assert inspect.iscoroutinefunction(implemented) == inspect.iscoroutinefunction(declared)
