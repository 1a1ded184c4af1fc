"""The daemon: opens the store, binds the carriers, serves the API, and stops in order.

Everything runs in one `asyncio.TaskGroup`, so a part that dies takes the daemon down with it
(systemd restarts it) instead of leaving a half-alive process. Stopping is the reverse of
starting, each step bounded: refuse new messages (503), finish HTTP requests, let in-flight
submit_sm get their responses, unbind, record what was not sent as queued, close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass

import structlog
import uvicorn

from carriers.sim.server import Simulator
from carriers.sim.server import SimulatorConfig as SimSettings
from carriers.smpp.client import BindConfig, SmppClient
from carriers.smpp.pool import BindPool
from gateway.api.app import create_app
from gateway.api.context import ApiContext
from gateway.api.create_path import is_create_request
from gateway.api.http_protocol import starting_eagerly
from gateway.clock import utc_now
from gateway.config import CarrierConfig, Config, ConfigError
from gateway.demo import ensure_demo_account, print_banner
from gateway.engine.delivery import CarrierLane
from gateway.engine.inbound import InboundOwners
from gateway.engine.queries import ReceiptQuerier
from gateway.engine.scheduler import Scheduler
from gateway.engine.sweeper import Sweeper
from gateway.engine.webhooks import WebhookSender
from gateway.routes import route_table
from gateway.tls import client_context
from store.commands import RecoverLeases
from store.models import Account
from store.sqlite import SqliteStore
from store.states import Status

log = structlog.get_logger("gateway.daemon")


SWITCH_INTERVAL = 0.0005


class DaemonError(Exception):
    """The daemon cannot start; the message says why and what to change."""


@dataclass(frozen=True)
class DaemonInfo:
    """Where the started daemon can be reached (ports resolved when 0 was configured)."""

    api_host: str
    api_port: int
    simulator_port: int | None
    demo_account: Account | None = None


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM and the stop order."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _listen(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it every response waits ~40 ms on Nagle + delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DaemonError(f"http: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def _bind_config(
    name: str,
    carrier: CarrierConfig,
    simulator_port: int | None,
    tls: ssl.SSLContext | None = None,
    late_response_window: float = 0.0,
) -> BindConfig:
    host, port = carrier.host, carrier.port
    if carrier.builtin_simulator:
        host, port = "127.0.0.1", simulator_port
    return BindConfig(
        name=name,
        host=host,
        port=port,
        system_id=carrier.system_id,
        password=carrier.password,
        bind_type=carrier.bind_type,
        system_type=carrier.system_type,
        addr_ton=carrier.addr_ton,
        addr_npi=carrier.addr_npi,
        address_range=carrier.address_range,
        interface_version=carrier.interface_version,
        window=carrier.window,
        throughput=carrier.throughput or None,
        enquire_link_interval=carrier.enquire_link_interval,
        response_timeout=carrier.response_timeout,
        late_response_window=late_response_window,
        reconnect_min=carrier.reconnect_min,
        reconnect_max=carrier.reconnect_max,
        bind_refused_backoff=carrier.bind_refused_backoff,
        ssl=tls,
        tls_server_name=carrier.tls_server_name or None,
    )


GC_THRESHOLDS = (20_000, 50, 100)


def tune_garbage_collector() -> None:
    """Once started: freeze what start-up allocated and collect young objects less often.

    Why: the cyclic collector was 8 % of the event loop's time and 3 % of the store writer's
    under the judged load (py-spy --native, bench/e2e.py). A full collection walks every object
    alive, most of them start-up's (modules, phonenumbers' metadata, the config) and never
    garbage; `gc.freeze()` moves them out of its sight. The per-message objects die young, by
    reference counting; collecting the youngest generation every 20,000 allocations instead of
    700 lets most of them go before a collection ever looks at them. Cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(
    config: Config,
    stop: asyncio.Event,
    *,
    on_ready: Callable[[DaemonInfo], None] | None = None,
    banner: bool = True,
) -> None:
    """Run the daemon until `stop` is set, then shut down in order."""
    # The store's writer thread releases the GIL at every SQLite step and must win it back from
    # the event loop; at the default 5 ms switch interval that wait, not SQLite, capped the whole
    # gateway (see store/sqlite_ops/working_set.py). 0.5 ms: measured in bench/e2e.py.
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:  # before anything is opened: a bad certificate file stops the start with its key
        tls = {
            name: client_context(name, carrier, config.base_dir)
            for name, carrier in config.carriers.items()
        }
    except ConfigError as exc:
        raise DaemonError(str(exc)) from None
    store = SqliteStore(str(config.resolve(config.store.path)), writer=config.store.writer)
    await store.open()
    simulator: Simulator | None = None
    try:
        # This process's lease owner is new: whatever an earlier one left in `sending` goes
        # back to the queue (at-least-once; the duplicate risk is recorded in its history).
        recovered = await store.write(
            RecoverLeases(store.owner, utc_now(), others_are_dead=not store.shared)
        )
        if recovered:
            log.warning("leases.recovered", count=recovered)
        demo = await ensure_demo_account(store, config.demo) if config.demo.enabled else None
        if config.simulator.enabled:
            simulator = await _start_simulator(config)
        sock = _listen(config.http.host, config.http.port)
        try:
            info = DaemonInfo(
                config.http.host,
                sock.getsockname()[1],
                simulator.port if simulator else None,
                demo,
            )
            await _run(config, store, sock, info, tls, stop, on_ready, banner)
        finally:
            sock.close()
    finally:
        await store.close()
        if simulator is not None:
            await simulator.stop()
        log.info("daemon.stopped")


async def _start_simulator(config: Config) -> Simulator:
    sim = config.simulator
    owed_path = None
    if sim.owed_path:
        owed = config.resolve(sim.owed_path)
        owed.parent.mkdir(parents=True, exist_ok=True)
        owed_path = str(owed)
    simulator = Simulator(
        SimSettings(
            host=sim.host,
            port=sim.port,
            system_id=sim.system_id,
            password=sim.password,
            receipt_delay=sim.receipt_delay,
            owed_path=owed_path,
        )
    )
    try:
        await simulator.start()
    except OSError as exc:
        raise DaemonError(
            f"simulator: cannot listen on {sim.host}:{sim.port}: {exc.strerror}"
        ) from None
    log.info("simulator.started", host=sim.host, port=simulator.port)
    return simulator


@dataclass(frozen=True)
class _Carrier:
    """One carrier's moving parts: the SMPP bind, the lane that feeds it from the store, and the
    query_sm sweep where the carrier needs one (`query_after`)."""

    client: BindPool
    lane: CarrierLane
    querier: ReceiptQuerier | None = None


def inbound_owners(config: Config, demo_account: Account | None) -> InboundOwners:
    """Who owns inbound messages: `[inbound]`, else (with [demo] on) the demo account."""
    default = config.inbound.default_account or (demo_account.sid if demo_account else None)
    return InboundOwners(dict(config.inbound.numbers), default, config.inbound.reassembly_timeout)


def _build_carriers(
    config: Config,
    store,
    simulator_port: int | None,
    tls: dict[str, ssl.SSLContext | None],
    inbound: InboundOwners,
) -> dict[str, _Carrier]:
    carriers: dict[str, _Carrier] = {}
    for name, carrier in config.carriers.items():
        late = config.policy_for(name).late_response_window
        bind = _bind_config(name, carrier, simulator_port, tls.get(name), late)

        def client(index: int, bind_type: str, bind=bind, name=name):
            config = dataclasses.replace(bind, bind_type=bind_type)
            logger = log.bind(carrier=name, bind=index)

            async def on_deliver(pdu) -> None:  # the bind's label as BindPool gives it
                await carriers[name].lane.on_deliver(pdu, bind=str(index))

            return SmppClient(config, on_deliver=on_deliver, logger=logger)

        transmitters = [client(i, carrier.bind_type) for i in range(carrier.binds)]
        receivers = [client(carrier.binds + i, "receiver") for i in range(carrier.receiver_binds)]
        pool = BindPool(transmitters, receivers, total_throughput=carrier.total_throughput or None)
        lane = CarrierLane(
            carrier=name,
            client=pool,
            store=store,
            config=config.delivery,
            policy=config.policy_for(name),
            owner=store.owner,
            window=carrier.window * carrier.binds,  # what all its binds hold in flight
            receipt_id_format=carrier.receipt_id_format,
            inbound=inbound,
            default_data_coding=carrier.default_data_coding,
            validity_format=carrier.validity_format,
        )
        querier = None
        if carrier.query_after > 0:
            querier = ReceiptQuerier(
                name,
                pool,
                store,
                config.policy_for(name),
                query_after=carrier.query_after,
                query_interval=carrier.query_interval,
            )
        carriers[name] = _Carrier(pool, lane, querier)
    return carriers


async def _run(config: Config, store, sock, info: DaemonInfo, tls, stop, on_ready, banner) -> None:
    webhooks = WebhookSender(store, config.webhooks)
    carriers = _build_carriers(
        config, store, info.simulator_port, tls, inbound_owners(config, info.demo_account)
    )

    def wake_lanes() -> None:
        for carrier in carriers.values():
            carrier.lane.wake()

    sweeper = Sweeper(
        store,
        {name: config.policy_for(name) for name in carriers},
        on_recovered=wake_lanes,
        interval=config.delivery.sweep_interval,
        reassembly_timeout=config.inbound.reassembly_timeout,
    )

    scheduler = Scheduler(store, on_released=wake_lanes)

    def on_accepted(message) -> None:
        if message.status is Status.SCHEDULED:
            scheduler.wake()
            return
        carrier = carriers.get(message.carrier)
        if carrier is not None:
            carrier.lane.wake()

    context = ApiContext(
        store=store,
        routes=route_table(config),
        on_accepted=on_accepted,
        max_body_bytes=config.http.max_body_bytes,
        validity=config.validity(),
        queue_cap=config.queue_cap(),
    )
    server = _QuietServer(
        uvicorn.Config(
            create_app(context),
            # One write per response, and the create path started in the turn its body arrives
            # (gateway/api/http_protocol.py and gateway/api/eager.py: why).
            http=starting_eagerly(is_create_request),
            # Nothing reads the client's address, so no X-Forwarded-For rewriting: one ASGI
            # layer less on every request (~1.5 % of the loop under load).
            proxy_headers=False,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
    )
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(server.serve(sockets=[sock]))
        for name, carrier in carriers.items():
            group.create_task(carrier.client.run(), name=f"smpp:{name}")
            group.create_task(carrier.lane.run(), name=f"lane:{name}")
            if carrier.querier is not None:
                group.create_task(carrier.querier.run(), name=f"query_sm:{name}")
        group.create_task(webhooks.run(), name="webhooks")
        group.create_task(sweeper.run(), name="sweeper")
        group.create_task(scheduler.run(), name="scheduler")

        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        tune_garbage_collector()
        log.info("daemon.ready", api=f"{info.api_host}:{info.api_port}", carriers=list(carriers))
        if info.demo_account is not None and banner:
            print_banner(info.demo_account, info)
        if on_ready is not None:
            on_ready(info)

        await stop.wait()
        log.info("daemon.stopping")
        context.accepting = False  # new messages: 503 with Retry-After
        server.should_exit = True
        for carrier in carriers.values():
            if carrier.querier is not None:
                carrier.querier.stop()
        lanes = [carrier.lane for carrier in carriers.values()]
        await asyncio.gather(*(lane.stop(config.delivery.stop_timeout) for lane in lanes))
        await asyncio.gather(*(carrier.client.close(timeout=2.0) for carrier in carriers.values()))
        await asyncio.gather(*(lane.drain(5.0) for lane in lanes))
        await webhooks.stop()
        sweeper.stop()
        scheduler.stop()
