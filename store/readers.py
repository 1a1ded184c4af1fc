"""A small pool of read-only connections, used from worker threads.

Reads block too, so they leave the event loop like writes do; but unlike writes they need no
ordering and no batching, and in WAL mode they run concurrently with each other and with the
writer. A read sees every write whose future has resolved (the commit happened before it).

Connections are opened `mode=ro` and `query_only`, so a bug in a read can never write.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from store.errors import StoreClosed

T = TypeVar("T")


class ReadPool:
    def __init__(self, connect: Callable[[], sqlite3.Connection], size: int) -> None:
        if size < 1:
            raise ValueError(f"read_connections must be at least 1, got {size}")
        self._connect = connect
        self._size = size
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        conns = await asyncio.to_thread(lambda: [self._connect() for _ in range(self._size)])
        self._all = conns
        for conn in conns:
            self._idle.put(conn)
        self._executor = ThreadPoolExecutor(self._size, thread_name_prefix="smsgw-store-read")

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` with a connection of its own on a pool thread."""
        if self._executor is None:
            raise StoreClosed("The store is not open; open() it before reading (or it was closed).")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._idle.get()
        try:
            return fn(conn)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._idle.put(conn)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.to_thread(executor.shutdown, wait=True)
        for conn in self._all:
            conn.close()
        self._all = []
