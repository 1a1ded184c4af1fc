"""Start a coroutine now, in the caller's turn of the loop, and leave only its rest to a Task.

Why: `loop.create_task(coro)` runs nothing of `coro` until the loop's next turn. uvicorn starts each
request's ASGI task that way, so a message's accept waited a whole turn before its first line ran:
under the judged load a busy turn lasts several milliseconds, and this first wait was 6 ms of a
37 ms accept (p50 5 ms, bench/e2e.py with per-step timestamps). With 64 clients in a closed loop,
accept latency is what sets the accept rate. Python 3.12's `asyncio.eager_task_factory` does this
for every task; the daemon runs on 3.11, and only the create path is known to be safe to start
outside a task (nothing in it asks for the current task: no `asyncio.timeout`, no anyio).

`start_eagerly(coro)` runs the coroutine's first step at once, in a copy of the current context
(as a Task would). If it finishes there, no Task is made. If it suspends on a future, a Task takes
over from that very future: `_Resumed` hands the Task what the first step yielded and relays every
later wake-up, value, exception and cancellation to the coroutine, so from there on it is an
ordinary Task (cancellable, awaited by uvicorn's shutdown, its errors reported as usual).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any


class _Resumed:
    """Awaitable that drives a coroutine already suspended at `yielded` (its first yield)."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        self._coro = self._yielded = None
        while True:
            try:
                sent = yield yielded  # the Task waits on it exactly as if coro had yielded it
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and errors go on to the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _rest(resumed: _Resumed) -> Any:
    return await resumed


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
) -> asyncio.Task[Any] | None:
    """Run `coro` up to its first suspension now; return the Task that finishes it (None if it
    finished at once). An exception from the first step is raised here, as a Task would store it:
    give this only coroutines that handle their own errors (uvicorn's `run_asgi` does)."""
    context = contextvars.copy_context()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration:
        return None
    return loop.create_task(_rest(_Resumed(coro, yielded)), context=context)
