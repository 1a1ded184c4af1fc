"""Several binds to one carrier, used as one: what the delivery lane submits through.

Carriers give an account a number of binds, each with its own window (and often its own
throughput); one bind caps a lane at ``window / round trip``. A pool submits through the bound
transmitting bind with the fewest submits in flight, so a bind that is down or slow simply takes
less, and binds equally idle take turns. Receiver-only binds (a transmitter + receiver pair instead
of transceivers) carry receipts and inbound messages and are never chosen for submits. Receipts
match across all binds because the store keys them by carrier, not by bind.

Throughput: each bind paces itself (its own ``throughput``, slowed when the carrier throttles it,
see `carriers.smpp.throttle`), and a carrier that contracts one rate for the whole account, however
many binds, gets ``total_throughput``: every submit takes a slot of the pool's pace first, then one
of its bind's. Neither burst.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from carriers.smpp.client import ClientClosed, SmppClient
from carriers.smpp.errors import QueryUnanswered
from carriers.smpp.pdus import QuerySm, SubmitSm
from carriers.smpp.results import QueryResult, SubmitResult
from carriers.smpp.throttle import Throttle


class BindPool:
    """The same face as one :class:`SmppClient` (``bound``, ``wait_bound``, ``submit``, ``run``,
    ``close``) over ``transmitters`` (which submit) and ``receivers`` (which only receive)."""

    def __init__(
        self,
        transmitters: Sequence[SmppClient],
        receivers: Sequence[SmppClient] = (),
        *,
        total_throughput: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not transmitters:
            raise ValueError("a bind pool needs at least one bind that can submit")
        self.pace = Throttle(total_throughput, clock=clock)  # messages/s over all binds
        self.transmitters = tuple(transmitters)
        self.clients = (*self.transmitters, *receivers)
        self._in_flight = dict.fromkeys(self.transmitters, 0)
        # Each bind's label in the history ("0", "1", ...: its place in the carrier's binds).
        self.labels = {client: str(i) for i, client in enumerate(self.clients)}
        self._turn = 0
        self._closing = False

    @property
    def bound(self) -> bool:
        """True while at least one bind that can submit is bound."""
        return any(client.bound for client in self.transmitters)

    async def wait_bound(self, timeout: float | None = None) -> None:
        """Return once a bind that can submit is bound; TimeoutError after ``timeout``."""
        async with asyncio.timeout(timeout):
            while not self.bound:
                if self._closing:
                    raise ClientClosed("the carrier's binds are closed")
                waits = [asyncio.ensure_future(c.wait_bound()) for c in self.transmitters]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for wait in waits:
                        wait.cancel()
                    await asyncio.gather(*waits, return_exceptions=True)

    async def submit(self, pdu: SubmitSm) -> SubmitResult:
        """Submit through the bound transmitting bind with the fewest submits in flight, taking
        turns among equals (the first bind if none is bound: it waits for its bind, as a lone
        client does), after the carrier-wide pace allows it."""
        if self.pace.limit is not None:
            await self.pace.acquire()
        transmitters = self.transmitters
        if len(transmitters) == 1:  # one bind (the common case): nothing to choose
            client = transmitters[0]
        else:
            bound = [c for c in transmitters if c.bound] or list(transmitters[:1])
            self._turn = (self._turn + 1) % len(bound)
            rotated = bound[self._turn :] + bound[: self._turn]  # ties go round, not the first
            client = min(rotated, key=self._in_flight.__getitem__)
        self._in_flight[client] += 1
        try:
            result = await client.submit(pdu)
        finally:
            self._in_flight[client] -= 1
        return SubmitResult(result.command_status, result.message_id, self.labels[client])

    async def query(self, pdu: QuerySm) -> QueryResult:
        """query_sm on a bound transmitting bind (the least busy); QueryUnanswered if none is."""
        bound = [c for c in self.transmitters if c.bound]
        if not bound:
            raise QueryUnanswered("no bind of this carrier can send a query_sm now")
        return await min(bound, key=self._in_flight.__getitem__).query(pdu)

    async def run(self) -> None:
        """Run every bind (each reconnects on its own); return once all are closed."""
        async with asyncio.TaskGroup() as group:
            for index, client in enumerate(self.clients):
                group.create_task(client.run(), name=f"bind:{client.config.name}#{index}")

    async def close(self, timeout: float = 5.0) -> None:
        self._closing = True
        await asyncio.gather(*(client.close(timeout) for client in self.clients))
