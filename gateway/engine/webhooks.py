"""Status callbacks: deliver the store's outbox of transitions to each message's StatusCallback.

The outbox rows are written in the same transaction as the transitions they report, so a crash
loses none; this sender only reads due rows, POSTs them (form-encoded, signed as Twilio signs)
and records the outcome. Callbacks of one message go out one at a time, in order: the store
hands out only the oldest pending callback of each message, and we skip a message whose
callback is still in flight. Failures are retried with exponential backoff and jitter, up to a
bound; a sender that is slow or down never slows message delivery, which runs elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp
import structlog

from gateway.accounts import AccountCache
from gateway.clock import utc_now
from gateway.config import WebhookConfig
from gateway.engine.backoff import backoff_delay
from gateway.signing import twilio_signature
from gateway.twilio import API_VERSION
from store.models import Callback

log = structlog.get_logger("gateway.webhooks")

USER_AGENT = "smsgw-webhooks/0.1"


def callback_params(callback: Callback) -> dict[str, str]:
    """The form Twilio posts for a status change (field names as Twilio's)."""
    params = {
        "AccountSid": callback.account_sid,
        "MessageSid": callback.message_sid,
        "SmsSid": callback.message_sid,
        "MessageStatus": str(callback.status),
        "SmsStatus": str(callback.status),
        "From": callback.from_addr,
        "To": callback.to_addr,
        "ApiVersion": API_VERSION,
    }
    if callback.error_code is not None:
        params["ErrorCode"] = str(callback.error_code)
    if callback.raw_done_date:
        params["RawDlrDoneDate"] = callback.raw_done_date
    return params


class WebhookSender:
    def __init__(
        self,
        store,
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
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: dict[str, asyncio.Task] = {}
        # Callback ids settled (delivered, rescheduled or given up) and when: a due_callbacks
        # read that began before the settlement committed may still list them as pending.
        self._settled: dict[int, float] = {}
        self._accounts = AccountCache(store.get_account, account_cache_seconds)
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.failed_attempts = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._config.concurrency, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=self._config.timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}
        ) as session:
            self._session = session
            while not self._stopping:
                self._wake.clear()
                free = self._config.concurrency - len(self._inflight)
                started = 0
                if free > 0:
                    read_started = time.monotonic()
                    due = await self._store.due_callbacks(self._clock(), free * 2)
                    settled = self._settled
                    self._settled = {i: t for i, t in settled.items() if t >= read_started}
                    for callback in due:
                        if (
                            callback.message_sid in self._inflight
                            or callback.id in settled
                            or started >= free
                        ):
                            continue
                        task = asyncio.create_task(self._send(callback))
                        self._inflight[callback.message_sid] = task
                        task.add_done_callback(
                            lambda _t, c=callback: self._done(c.message_sid, c.id)
                        )
                        started += 1
                if started == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), 0.5)
            if self._inflight:
                await asyncio.wait(set(self._inflight.values()), timeout=self._config.timeout)

    def _done(self, message_sid: str, callback_id: int) -> None:
        self._settled[callback_id] = time.monotonic()
        self._inflight.pop(message_sid, None)
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _send(self, callback: Callback) -> None:
        params = callback_params(callback)
        account = await self._accounts.get(callback.account_sid)
        if account is None:
            await self._store.callback_give_up(
                callback.id, error="account no longer exists", now=self._clock()
            )
            return
        headers = {"X-Twilio-Signature": twilio_signature(account.auth_token, callback.url, params)}
        error = None
        try:
            async with self._session.post(callback.url, data=params, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    await self._store.callback_delivered(callback.id, self._clock())
                    self.delivered += 1
                    log.debug(
                        "webhook.delivered",
                        sid=callback.message_sid,
                        status=str(callback.status),
                        http_status=resp.status,
                    )
                    return
                error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        await self._failed(callback, error)

    async def _failed(self, callback: Callback, error: str) -> None:
        self.failed_attempts += 1
        attempt = callback.attempts + 1
        now = self._clock()
        if attempt >= self._config.max_attempts:
            await self._store.callback_give_up(callback.id, error=error, now=now)
            log.warning(
                "webhook.given_up",
                sid=callback.message_sid,
                url=callback.url,
                attempts=attempt,
                error=error,
            )
            return
        delay = backoff_delay(attempt, self._config.retry_base, self._config.retry_max, self._rng)
        await self._store.callback_retry(
            callback.id, error=error, next_attempt_at=now + timedelta(seconds=delay), now=now
        )
        log.info(
            "webhook.retry_scheduled",
            sid=callback.message_sid,
            url=callback.url,
            attempt=attempt,
            delay=round(delay, 3),
            error=error,
        )
