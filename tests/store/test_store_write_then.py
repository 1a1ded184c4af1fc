"""`write_then`: the same write as `write`, its outcome handed to a callback once durable."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from store import StoreUnavailable
from store.commands import Accept
from store.errors import AlreadyExists
from store.sqlite import SqliteStore
from store.states import Status
from tests.store.store_kit import T0, TIMEOUT, hold_writer, new_message


class _Outcomes:
    def __init__(self) -> None:
        self.calls: list[tuple[bool, object]] = []
        self.event = asyncio.Event()

    def __call__(self, ok: bool, value: object) -> None:
        self.calls.append((ok, value))
        self.event.set()

    async def first(self) -> tuple[bool, object]:
        await asyncio.wait_for(self.event.wait(), TIMEOUT)
        return self.calls[0]


async def test_the_callback_gets_the_result_once_the_write_is_durable(store: SqliteStore) -> None:
    outcomes = _Outcomes()
    store.write_then(Accept(new_message(1), T0), outcomes)
    assert outcomes.calls == []  # never before write_then returns
    ok, value = await outcomes.first()
    assert (ok, value) == (True, None)
    stored = await store.find_message(new_message(1).sid)  # a read sees it: it was committed
    assert stored is not None and stored.status is Status.QUEUED
    await asyncio.sleep(0.05)
    assert len(outcomes.calls) == 1


async def test_the_callback_gets_the_commands_own_error(store: SqliteStore) -> None:
    await store.write(Accept(new_message(1), T0))
    outcomes = _Outcomes()
    store.write_then(Accept(new_message(1), T0), outcomes)  # the same sid again
    ok, value = await outcomes.first()
    assert not ok and isinstance(value, AlreadyExists)


async def test_a_callback_that_raises_is_reported_and_the_other_writes_go_on(
    store: SqliteStore,
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        release = hold_writer(store)  # both writes in one batch: one answer frame

        def broken(ok: bool, value: object) -> None:
            raise RuntimeError("a bug in the caller")

        store.write_then(Accept(new_message(1), T0), broken)
        after = store.write(Accept(new_message(2), T0))
        outcomes = _Outcomes()
        store.write_then(Accept(new_message(3), T0), outcomes)
        release.set()
        await asyncio.wait_for(after, TIMEOUT)
        assert await outcomes.first() == (True, None)
        await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(previous)
    assert [type(c.get("exception")) for c in reported] == [RuntimeError]


async def test_a_killed_writer_process_fails_the_waiting_callbacks(db_path) -> None:
    from store.commands import CreateAccount
    from tests.store.store_kit import ACCOUNT, OWNER

    async with SqliteStore(db_path, owner=OWNER, writer="process") as store:
        await store.write(CreateAccount(ACCOUNT, "Main", "token-main", T0))
        pid = store.writer_pid
        assert pid is not None
        release = hold_writer(store)  # stopped: the write waits in the socket
        outcomes = _Outcomes()
        store.write_then(Accept(new_message(1), T0), outcomes)
        await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        release.set()
        ok, value = await outcomes.first()
        assert not ok and isinstance(value, StoreUnavailable)
        # While it is being replaced, a new write_then is failed on a later turn, not in the call.
        if store.writer_pid == pid and store._writer._transport is None:
            later = _Outcomes()
            store.write_then(Accept(new_message(2), T0), later)
            assert later.calls == []
            ok, value = await later.first()
            assert not ok and isinstance(value, StoreUnavailable)


@pytest.mark.parametrize("kind", ["thread", "process"])
async def test_a_closed_store_refuses_at_once(db_path, kind: str) -> None:
    from store.errors import StoreClosed
    from tests.store.store_kit import OWNER

    store = SqliteStore(db_path, owner=OWNER, writer=kind)
    await store.open()
    await store.close()
    with pytest.raises(StoreClosed):
        store.write_then(Accept(new_message(1), T0), _Outcomes())
