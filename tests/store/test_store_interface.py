"""`SqliteStore` is one implementation of `store.base.Store`; keep the two in step."""

from __future__ import annotations

import inspect

import pytest

from store import Store, StoreError
from store import commands as cmd
from store.sqlite import SqliteStore
from store.sqlite_ops.handlers import _HANDLERS

PUBLIC = sorted(
    name
    for name, value in vars(Store).items()
    if (inspect.isfunction(value) or isinstance(value, property))
    and (not name.startswith("_") or name in {"__aenter__", "__aexit__"})
)

COMMANDS = {
    value
    for value in vars(cmd).values()
    if inspect.isclass(value) and issubclass(value, cmd.Command) and value is not cmd.Command
}


def test_the_protocol_covers_the_whole_interface() -> None:
    assert {"write", "hand_callbacks_to", "stats", "get_message", "message_events"} <= set(PUBLIC)
    # the old one-method-per-write interface is gone: every write is a command
    assert not {"accept", "claim_due", "record_receipt", "recover_leases", "due_callbacks"} & set(
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


def test_every_command_has_exactly_one_handler() -> None:
    kinds = [kind for kind, _ in _HANDLERS]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) == COMMANDS


def test_commands_are_frozen_values() -> None:
    for kind in COMMANDS:
        config = getattr(kind, "__struct_config__", None)
        assert config is not None and config.frozen, kind.__name__


async def test_writing_something_that_is_not_a_command_is_refused(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="not a store command"):
        store.write(object())  # type: ignore[arg-type]
