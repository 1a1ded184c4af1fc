"""`start_eagerly`: the first step runs now, the rest is an ordinary Task (values, errors,
cancellation and context all behave as for `loop.create_task`)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from gateway.api.eager import start_eagerly

pytestmark = pytest.mark.timeout(10)

_var: contextvars.ContextVar[str] = contextvars.ContextVar("_var", default="outside")


async def test_a_coroutine_that_never_suspends_runs_to_its_end_now_and_makes_no_task() -> None:
    ran = []

    async def quick() -> None:
        ran.append("all")

    assert start_eagerly(asyncio.get_running_loop(), quick()) is None
    assert ran == ["all"]


async def test_the_first_step_runs_now_and_the_rest_when_its_future_is_done() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    steps = []

    async def work() -> int:
        steps.append("first")
        value = await future
        steps.append(f"got {value}")
        await asyncio.sleep(0)  # a bare yield after the first one
        second = await asyncio.sleep(0.001, result=5)
        steps.append("last")
        return value + second

    task = start_eagerly(loop, work())
    assert steps == ["first"]  # before any turn of the loop
    assert task is not None and not task.done()
    future.set_result(37)
    assert await task == 42
    assert steps == ["first", "got 37", "last"]


async def test_an_error_after_the_first_step_is_the_tasks_error() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    async def work() -> None:
        await future

    task = start_eagerly(loop, work())
    assert task is not None
    future.set_exception(KeyError("gone"))
    with pytest.raises(KeyError, match="gone"):
        await task


async def test_an_error_caught_inside_the_coroutine_stays_inside() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    async def work() -> str:
        try:
            await future
        except ValueError as exc:
            return f"handled {exc}"
        return "not reached"

    task = start_eagerly(loop, work())
    assert task is not None
    future.set_exception(ValueError("bad"))
    assert await task == "handled bad"


async def test_an_error_in_the_first_step_is_raised_to_the_caller() -> None:
    async def broken() -> None:
        raise RuntimeError("at once")

    with pytest.raises(RuntimeError, match="at once"):
        start_eagerly(asyncio.get_running_loop(), broken())


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    loop = asyncio.get_running_loop()
    cleaned = []

    async def work() -> None:
        try:
            await loop.create_future()  # never done
        finally:
            cleaned.append("finally ran")

    task = start_eagerly(loop, work())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert cleaned == ["finally ran"]


async def test_the_coroutine_runs_in_a_context_of_its_own_as_a_task_does() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    seen = []

    async def work() -> None:
        _var.set("inside")
        await future
        seen.append(_var.get())

    _var.set("caller")
    task = start_eagerly(loop, work())
    assert _var.get() == "caller"  # the first step's set did not leak out
    future.set_result(None)
    assert task is not None
    await task
    assert seen == ["inside"]  # the rest ran in the same context as the first step
