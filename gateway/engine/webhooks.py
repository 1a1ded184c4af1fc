"""Status callbacks: deliver the store's outbox of transitions to each message's StatusCallback.

The outbox rows are written in the same transaction as the transitions they report, so a crash
loses none. They reach this sender two ways:

* **Handed over** (the hot path): the store writes each new callback leased to this process and
  hands it here right after the commit (`Store.hand_callbacks_to`), so nothing polls for it.
* **Claimed** (everything else): retries that fell due, callbacks whose lease ran out (a sender
  that died, a node that is gone, a burst this sender had no room for), a backlog after a restart.
  A claim leases what it returns, so two senders never post the same callback.

Callbacks of one message go out one at a time, in order: the store only ever makes a message's
oldest pending callback due, and here a message's later callbacks wait in memory behind the one in
flight. **A failing callback never holds a newer status back**: one that fails while a newer
status of its message is waiting (here, or in the store) is skipped — state `skipped`, its error
kept — and the newer one goes at once; one waiting for its retry when a newer status is written is
skipped the same way. So the application always gets the newest state within one attempt's
timeout, and never an older status after a newer one.

A fixed pool of workers posts them (form-encoded, signed as Twilio signs) with a lean keep-alive
client (`gateway.engine.http_client`), retried with backoff up to a bound; a receiver
that is slow or down never slows message delivery, which runs elsewhere. Settling a callback
(delivered, retry, given up) is written without waiting — the deliveries of one loop turn as one
`CallbacksDelivered` — and while the store cannot commit it is kept
in memory and written again with backoff, so a short outage does not leave a message's later
callbacks waiting for a lease to run out. If the process dies first, the lease runs out and the
callback is posted again — at least once, never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from gateway.accounts import AccountCache
from gateway.clock import utc_now
from gateway.config import WebhookConfig
from gateway.engine.callback_form import signed_form
from gateway.engine.http_client import WebhookClient, WebhookError
from gateway.engine.policy import backoff_delay
from store.base import Store
from store.commands import (
    CallbackDelivered,
    CallbackGiveUp,
    CallbackRetry,
    CallbacksDelivered,
    CallbackSuperseded,
    ClaimCallbacks,
    ReleaseCallbacks,
)
from store.errors import StoreError, StoreUnavailable
from store.models import Callback

log = structlog.get_logger("gateway.webhooks")

Settle = (
    CallbackDelivered
    | CallbacksDelivered
    | CallbackRetry
    | CallbackGiveUp
    | CallbackSuperseded
    | ReleaseCallbacks
)

USER_AGENT = "smsgw-webhooks/0.1"
CLAIM_INTERVAL = 1.0  # how often to look for due retries and expired leases when idle
SETTLE_RETRY_MAX = 5.0  # seconds: the longest wait before writing a settle again


class WebhookSender:
    def __init__(
        self,
        store: Store,
        config: WebhookConfig,
        *,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        account_cache_seconds: float = 5.0,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._accounts = AccountCache(store.get_account, account_cache_seconds)
        # A lease outlives every attempt it covers: the wait in memory plus the post itself.
        self.lease_seconds = max(60.0, 6 * config.timeout)
        self._capacity = max(1000, 50 * config.concurrency)
        self._ready: asyncio.Queue[Callback] = asyncio.Queue()
        self._waiting: dict[str, deque[Callback]] = {}  # per message: in flight first, then later
        self._known: set[int] = set()  # callback ids held in memory (queued or in flight)
        # Messages with a callback waiting in the store for its retry: their later callbacks wait
        # there too (behind it), so none handed over may overtake it. Until when, monotonic.
        self._parked: dict[str, float] = {}
        self._settling: set[int] = set()  # callback ids whose settle write is not yet durable
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._pending_writes: set[asyncio.Future[None]] = set()
        self._retrying_settles: dict[int, asyncio.TimerHandle] = {}
        self._delivered_ids: list[int] = []  # answered 2xx this loop turn, written together
        self.delivered = 0
        self.failed_attempts = 0

    # -- intake ---------------------------------------------------------------------------

    def offer(self, callbacks: list[Callback]) -> None:
        """Take callbacks handed over by the store (leased to us) right after their commit.

        One whose message has an earlier callback pending (`after`) is taken only if that one is
        here too (it queues behind it) or was just settled by us (its settle write is not yet
        durable, so the store still counted it); otherwise the earlier one waits in the store,
        and this message's callbacks are left to be claimed there, in order.
        """
        released: list[int] = []
        for callback in callbacks:
            sid = callback.message_sid
            after = callback.after
            if after is None:
                # Nothing of its message is pending before it (one waiting for a retry was just
                # superseded by it, `store/sqlite_ops/working_set.py`): it goes now.
                self._parked.pop(sid, None)
            in_line = after is None or after in self._known or after in self._settling
            if sid in self._parked or not in_line or not self._take(callback):
                released.append(callback.id)
                released.extend(self._park(sid))
        if released:
            self._settle(ReleaseCallbacks(tuple(released), self._clock()))

    def _take(self, callback: Callback) -> bool:
        if callback.id in self._known:
            return True
        if len(self._known) >= self._capacity:
            return False  # no room: its lease runs out and it is claimed later, in order
        self._known.add(callback.id)
        queue = self._waiting.get(callback.message_sid)
        if queue is None:
            self._waiting[callback.message_sid] = deque((callback,))
            self._ready.put_nowait(callback)
        else:
            queue.append(callback)
        return True

    def _park(self, sid: str) -> list[int]:
        """Leave this message's callbacks to the store's claims (which keep their order); return
        the ids taken back from memory, to be released."""
        dropped: list[int] = []
        queue = self._waiting.pop(sid, None)
        if queue is not None:  # the one in flight finishes; the rest are claimed later
            self._waiting[sid] = deque((queue[0],))
            dropped = [later.id for later in list(queue)[1:]]
            self._known.difference_update(dropped)
        horizon = self._config.retry_max + self.lease_seconds
        self._parked[sid] = asyncio.get_running_loop().time() + horizon
        return dropped

    def wake(self) -> None:
        self._wake.set()

    # -- running --------------------------------------------------------------------------

    async def run(self) -> None:
        self._store.hand_callbacks_to(self.offer, self.lease_seconds)
        async with WebhookClient(
            max_per_host=self._config.concurrency,
            timeout=self._config.timeout,
            user_agent=USER_AGENT,
        ) as client:
            workers = [
                asyncio.create_task(self._worker(client), name=f"webhook-{i}")
                for i in range(self._config.concurrency)
            ]
            try:
                while not self._stopping:
                    await self._claim_due()
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), CLAIM_INTERVAL)
                # Let callbacks in flight finish (bounded), then stop the workers.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle(), self._config.timeout)
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                for retry in self._retrying_settles.values():
                    retry.cancel()  # not durable: the leases run out, the callbacks go again
                self._retrying_settles.clear()
                self._write_delivered()  # this turn's deliveries, not yet written
                if self._pending_writes:
                    await asyncio.wait(self._pending_writes, timeout=5.0)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _idle(self) -> None:
        while self._in_flight:
            await asyncio.sleep(0.05)  # only while stopping: in-flight posts are finishing

    async def _claim_due(self) -> None:
        room = min(self._capacity - len(self._known), 4 * self._config.concurrency)
        if room <= 0:
            return
        try:
            claimed = await self._store.write(
                ClaimCallbacks(self._store.owner, room, self.lease_seconds, self._clock())
            )
        except StoreError as exc:
            log.warning("webhooks.claim_failed", error=str(exc))
            return
        for callback in claimed:
            # The store hands out a message's oldest pending callback only: whatever it waited
            # behind is settled, so the message's order is the store's again.
            self._parked.pop(callback.message_sid, None)
            self._take(callback)
        if self._parked:
            now = asyncio.get_running_loop().time()
            self._parked = {sid: t for sid, t in self._parked.items() if t > now}

    async def _worker(self, client: WebhookClient) -> None:
        while True:
            callback = await self._ready.get()
            self._in_flight += 1
            try:
                outcome = await self._send(client, callback)
            except Exception:  # never lose the worker: log, and let the lease run out
                log.exception("webhook.crashed", sid=callback.message_sid)
                outcome = "dropped"
            finally:
                self._in_flight -= 1
            self._next_of(callback, retry=outcome in ("retry", "dropped"))

    def _next_of(self, callback: Callback, *, retry: bool) -> None:
        """The callback is settled: start the message's next one, or (after a retry scheduled
        for it) let them all wait in the store, due again behind it."""
        sid = callback.message_sid
        queue = self._waiting.get(sid)
        if queue is None:  # pragma: no cover - every callback in flight has its queue
            return
        queue.popleft()
        self._known.discard(callback.id)
        if retry or not queue:
            released = [later.id for later in queue]
            self._known.difference_update(released)
            del self._waiting[sid]
            if retry:  # the store released the later ones with the retry
                self._park(sid)
            elif released:  # pragma: no cover - an empty queue has nothing to release
                self._settle(ReleaseCallbacks(tuple(released), self._clock()))
            return
        self._ready.put_nowait(queue[0])

    # -- one callback ---------------------------------------------------------------------

    async def _send(self, client: WebhookClient, callback: Callback) -> str:
        known, account = self._accounts.cached(callback.account_sid)
        if not known:
            account = await self._accounts.get(callback.account_sid)
        if account is None:
            self._settle(CallbackGiveUp(callback.id, "account no longer exists", self._clock()))
            return "given_up"
        body, signature = signed_form(callback, callback.url, account.auth_token)
        try:
            response = await client.post_form(
                callback.url, body, (("X-Twilio-Signature", signature),)
            )
        except WebhookError as exc:
            return self._failed(callback, str(exc))
        if 200 <= response.status < 300:
            self.delivered += 1
            self._delivered_now(callback.id)
            return "delivered"
        return self._failed(callback, f"HTTP {response.status}")

    def _failed(self, callback: Callback, error: str) -> str:
        self.failed_attempts += 1
        attempt = callback.attempts + 1
        now = self._clock()
        queue = self._waiting.get(callback.message_sid)
        if queue is not None and len(queue) > 1:
            # A newer status of the message waits behind this one: the application needs the
            # newest state, so this one is skipped (recorded) instead of holding it back.
            self._settle(CallbackSuperseded(callback.id, error, now))
            log.info(
                "webhook.superseded",
                sid=callback.message_sid,
                status=str(callback.status),
                by=str(queue[1].status),
                error=error,
            )
            return "superseded"
        if attempt >= self._config.max_attempts:
            self._settle(CallbackGiveUp(callback.id, error, now))
            log.warning(
                "webhook.given_up",
                sid=callback.message_sid,
                url=callback.url,
                attempts=attempt,
                error=error,
            )
            return "given_up"
        delay = backoff_delay(attempt, self._config.retry_base, self._config.retry_max, self._rng)
        self._settle(CallbackRetry(callback.id, error, now + timedelta(seconds=delay), now))
        log.info(
            "webhook.retry_scheduled",
            sid=callback.message_sid,
            url=callback.url,
            attempt=attempt,
            delay=round(delay, 3),
            error=error,
        )
        return "retry"

    def _delivered_now(self, callback_id: int) -> None:
        """Deliveries are written once per loop turn, together (`CallbacksDelivered`). Until
        durable the id counts as settling, exactly as a single settle's would."""
        self._settling.add(callback_id)
        if not self._delivered_ids:
            asyncio.get_running_loop().call_soon(self._write_delivered)
        self._delivered_ids.append(callback_id)

    def _write_delivered(self) -> None:
        ids, self._delivered_ids = tuple(self._delivered_ids), []
        if ids:
            self._settle(CallbacksDelivered(ids, self._clock()))

    def _settle(
        self,
        command: Settle,
        failures: int = 0,
    ) -> None:
        """Write the outcome without waiting for it (see the module docstring)."""
        future = asyncio.ensure_future(self._store.write(command))
        self._pending_writes.add(future)
        # Delivered or given up: no longer pending once durable. Until then a callback written
        # after it may still name it as the one to wait for (`Callback.after`).
        if isinstance(command, CallbacksDelivered):
            done: tuple[int, ...] = command.callback_ids
        elif isinstance(command, CallbackDelivered | CallbackGiveUp | CallbackSuperseded):
            done = (command.callback_id,)
        else:
            done = ()
        self._settling.update(done)
        future.add_done_callback(lambda f: self._settled(f, command, done, failures))

    def _settle_again(
        self,
        command: Settle,
        failures: int,
    ) -> None:
        self._retrying_settles.pop(id(command), None)
        self._settle(command, failures)

    def _settled(
        self,
        future: asyncio.Future[None],
        command: Settle,
        ids: tuple[int, ...],
        failures: int,
    ) -> None:
        self._pending_writes.discard(future)
        error = None if future.cancelled() else future.exception()
        if isinstance(error, StoreUnavailable) and not self._stopping:
            # Nothing was written: what the receiver said is only here. Write it again.
            failures += 1
            delay = backoff_delay(failures, 0.1, SETTLE_RETRY_MAX, self._rng)
            log.warning(
                "webhook.settle_retried",
                command=type(command).__name__,
                error=str(error),
                retry_in=round(delay, 3),
            )
            loop = asyncio.get_running_loop()
            retry = loop.call_later(delay, self._settle_again, command, failures)
            self._retrying_settles[id(command)] = retry
            return
        self._settling.difference_update(ids)
        if error is not None:
            log.warning("webhook.settle_failed", error=str(error))
        elif isinstance(command, CallbacksDelivered) and future.result():
            # Settled already (a lease ran out and another sender posted it too): at least once.
            log.info("webhook.settled_already", callback_ids=list(future.result()))
