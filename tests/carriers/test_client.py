"""SmppClient against the simulator over loopback: bind, submit, receipts, failures."""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time

import pytest
from msgspec.structs import replace

from carriers.backoff import backoff_delay
from carriers.sim.server import Simulator, SimulatorConfig
from carriers.smpp import constants as c
from carriers.smpp.client import BindConfig, ClientClosed, SmppClient
from carriers.smpp.encoder import encode_with_sequence
from carriers.smpp.errors import SubmitNotSent, SubmitUncertain
from carriers.smpp.pdus import BindTransceiverResp, EnquireLinkResp, SubmitSm, SubmitSmResp
from carriers.smpp.receipts import parse_receipt
from carriers.smpp.throttle import Throttle

pytestmark = pytest.mark.timeout(30)


def message(n: int = 0) -> SubmitSm:
    return SubmitSm(
        source_addr="Acme", source_addr_ton=c.TON_ALPHANUMERIC, dest_addr_ton=1, dest_addr_npi=1,
        destination_addr=f"4477009{n:05d}", short_message=f"message {n}".encode(),
        registered_delivery=1,
    )  # fmt: skip


async def test_hundred_submits_with_window_10_are_accepted_and_receipted(sim, start_client):
    r = await start_client(sim.port, window=10)
    await r.client.wait_bound(timeout=5)
    results = await asyncio.wait_for(
        asyncio.gather(*(r.client.submit(message(i)) for i in range(100))), 10
    )
    assert all(result.ok for result in results)
    ids = {result.message_id for result in results}
    assert len(ids) == 100
    assert [s.destination_addr for s in sim.stats.submitted] == [
        f"4477009{i:05d}" for i in range(100)
    ]
    await sim.wait_for(lambda: sim.stats.receipts_acked == 100)
    assert {parse_receipt(pdu).message_id for pdu in r.received} == ids
    assert all(parse_receipt(pdu).stat == "DELIVRD" for pdu in r.received)
    stats = r.client.stats
    assert (stats.submitted, stats.accepted, stats.receipts) == (100, 100, 100)


async def test_submit_waits_for_the_bind(sim, start_client):
    r = await start_client(sim.port)
    result = await asyncio.wait_for(r.client.submit(message()), 5)  # not bound yet at call time
    assert result.ok and r.client.bound


async def test_carrier_error_is_a_result_not_an_exception(start_client):
    def reject_premium(pdu: SubmitSm) -> int:
        return c.ESME_RINVDSTADR if pdu.destination_addr.startswith("4490") else c.ESME_ROK

    async with Simulator(SimulatorConfig(submit_status=reject_premium)) as sim:
        r = await start_client(sim.port)
        bad = await asyncio.wait_for(
            r.client.submit(replace(message(), destination_addr="449099")), 5
        )
        good = await asyncio.wait_for(r.client.submit(message()), 5)
        assert (bad.command_status, bad.message_id, bad.ok) == (c.ESME_RINVDSTADR, None, False)
        assert bad.status_name == "ESME_RINVDSTADR"
        assert good.ok
        assert r.client.stats.rejected == 1
        await r.stop()


async def test_wrong_password_is_refused_and_retried_after_the_long_backoff(sim, start_client):
    r = await start_client(sim.port, password="wrong", bind_refused_backoff=0.3)
    await sim.wait_for(lambda: sim.stats.bind_attempts == 1)
    first = time.monotonic()
    await sim.wait_for(lambda: sim.stats.bind_attempts == 2)
    assert time.monotonic() - first >= 0.3
    assert sim.stats.binds == 0
    assert r.client.stats.bind_refusals >= 1 and not r.client.bound


async def test_wrong_system_id_is_refused(sim, start_client):
    r = await start_client(sim.port, system_id="nobody", bind_refused_backoff=10)
    await sim.wait_for(lambda: sim.stats.bind_attempts == 1)
    with pytest.raises(TimeoutError):
        await r.client.wait_bound(timeout=0.1)


async def test_disconnect_reconnects_and_submits_again(sim, start_client):
    r = await start_client(sim.port)
    assert (await asyncio.wait_for(r.client.submit(message(1)), 5)).ok
    sim.disconnect_all()
    await sim.wait_for(lambda: sim.stats.binds == 2)  # the client noticed and bound again
    assert (await asyncio.wait_for(r.client.submit(message(2)), 5)).ok
    assert r.client.stats.reconnects == 1


async def test_in_flight_submits_on_disconnect_are_uncertain(sim, start_client):
    r = await start_client(sim.port, window=10)
    await r.client.wait_bound(timeout=5)
    sim.hold_responses()
    tasks = [asyncio.create_task(r.client.submit(message(i))) for i in range(5)]
    await sim.wait_for(lambda: sim.stats.submits == 5)
    sim.disconnect_all()
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert all(isinstance(o, SubmitUncertain) for o in outcomes), outcomes
    assert r.client.stats.submitted == 5
    sim.release_responses()
    assert (await asyncio.wait_for(r.client.submit(message()), 5)).ok  # window slots came back


async def test_unanswered_submit_times_out_as_uncertain(sim, start_client):
    r = await start_client(sim.port, response_timeout=0.2)
    await r.client.wait_bound(timeout=5)
    sim.hold_responses()
    with pytest.raises(SubmitUncertain, match="no submit_sm_resp"):
        await asyncio.wait_for(r.client.submit(message()), 5)
    assert r.client.stats.uncertain == 1


async def answer_the_bind(reader, writer, system_id: str) -> None:
    """Play an SMSC's side of the bind: read the bind request, accept it."""
    header = await reader.readexactly(16)
    length, _, _, seq = struct.unpack(">IIII", header)
    await reader.readexactly(length - 16)
    writer.write(encode_with_sequence(BindTransceiverResp(system_id=system_id), seq))


async def test_a_submit_times_out_on_time_when_a_later_keepalive_is_armed(start_client):
    """An SMSC that answers the bind and then nothing: the idle bind's only timer is the
    keepalive, 3 s away, and a submit's 0.2 s deadline must re-arm it (it waited behind it:
    5 s configured fired after 18-26 s)."""
    writers = []

    async def bind_only(reader, writer):
        writers.append(writer)
        await answer_the_bind(reader, writer, "quiet")
        await reader.read()  # then silence

    server = await asyncio.start_server(bind_only, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        r = await start_client(port, response_timeout=0.2, enquire_link_interval=3.0)
        await r.client.wait_bound(timeout=5)
        await asyncio.sleep(0.5)  # past the bind's own deadline: only the keepalive is timed
        started = time.monotonic()
        with pytest.raises(SubmitUncertain, match="no submit_sm_resp"):
            await asyncio.wait_for(r.client.submit(message()), 5)
        assert time.monotonic() - started < 1.5
        await r.stop()
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def test_failing_deliver_handler_makes_the_smsc_retry(sim, start_client):
    calls = []

    async def flaky(pdu):
        calls.append(pdu)
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    r = await start_client(sim.port, on_deliver=flaky)
    await asyncio.wait_for(r.client.submit(message()), 5)
    await sim.wait_for(lambda: sim.stats.receipts_acked == 1)
    assert sim.stats.deliver_errors == 1
    assert len(calls) == 2
    assert replace(calls[1], sequence_number=calls[0].sequence_number) == calls[0]


async def test_slow_deliver_handler_does_not_block_submit_responses(sim, start_client):
    release = asyncio.Event()

    async def slow(pdu):
        await release.wait()

    r = await start_client(sim.port, on_deliver=slow, window=2)
    for i in range(6):  # more than the window: responses must keep flowing
        assert (await asyncio.wait_for(r.client.submit(message(i)), 5)).ok
    await sim.wait_for(lambda: sim.stats.receipts_sent == 6)
    assert sim.stats.receipts_acked == 0
    release.set()
    await sim.wait_for(lambda: sim.stats.receipts_acked == 6)


async def test_close_unbinds_cleanly_and_stops_run(sim, start_client):
    r = await start_client(sim.port)
    await r.client.wait_bound(timeout=5)
    await r.client.close(timeout=2)
    await asyncio.wait_for(r.task, 5)
    await sim.wait_for(lambda: sim.stats.unbinds == 1)
    with pytest.raises(SubmitNotSent):
        await r.client.submit(message())
    with pytest.raises(ClientClosed):
        await r.client.wait_bound()


async def test_close_waits_for_in_flight_submits(sim, start_client):
    r = await start_client(sim.port)
    await r.client.wait_bound(timeout=5)
    sim.hold_responses()
    pending = asyncio.create_task(r.client.submit(message()))
    await sim.wait_for(lambda: sim.stats.submits == 1)
    closing = asyncio.create_task(r.client.close(timeout=5))
    await asyncio.sleep(0)
    sim.release_responses()
    assert (await asyncio.wait_for(pending, 5)).ok
    await asyncio.wait_for(closing, 5)
    await sim.wait_for(lambda: sim.stats.unbinds == 1)


async def test_close_while_waiting_for_a_bind_fails_submits_as_not_sent(start_client):
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens there now: connects fail
    r = await start_client(port)
    waiting = asyncio.create_task(r.client.submit(message()))
    await asyncio.sleep(0)  # let the submit start waiting for a bind
    await asyncio.wait_for(r.client.close(), 5)
    with pytest.raises(SubmitNotSent):
        await asyncio.wait_for(waiting, 5)
    await asyncio.wait_for(r.task, 5)


async def test_silent_server_times_the_bind_out_and_reconnects(start_client):
    connections = []
    second = asyncio.Event()

    async def silent(reader, writer):
        connections.append(writer)
        if len(connections) == 2:
            second.set()
        await reader.read()  # never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        r = await start_client(port, response_timeout=0.1)
        await asyncio.wait_for(second.wait(), 5)
        assert not r.client.bound
        await r.stop()
    finally:
        server.close()
        for writer in connections:
            writer.close()


async def test_throughput_spaces_submits(sim, start_client):
    r = await start_client(sim.port, throughput=40.0, window=10)
    await r.client.wait_bound(timeout=5)
    start = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(r.client.submit(message(i)) for i in range(9))), 5)
    assert time.monotonic() - start >= 8 / 40 * 0.9


async def test_enquire_link_keeps_an_idle_bind_up(sim, start_client):
    r = await start_client(sim.port, enquire_link_interval=0.02, response_timeout=0.5)
    await r.client.wait_bound(timeout=5)
    await sim.wait_for(lambda: sim.stats.enquire_links >= 5)
    assert r.client.bound and r.client.stats.reconnects == 0


def test_bind_config_rejects_what_the_carrier_would():
    with pytest.raises(ValueError, match="password"):
        BindConfig(name="x", host="h", port=1, system_id="a", password="123456789")
    with pytest.raises(ValueError, match="bind_type"):
        BindConfig(name="x", host="h", port=1, system_id="a", password="b", bind_type="tx")
    with pytest.raises(ValueError, match="window"):
        BindConfig(name="x", host="h", port=1, system_id="a", password="b", window=0)
    assert "secret" not in repr(
        BindConfig(name="x", host="h", port=1, system_id="a", password="secret")
    )


async def test_submit_rejects_other_pdus():
    client = SmppClient(
        BindConfig(name="x", host="h", port=1, system_id="a", password="b"),
        on_deliver=lambda pdu: asyncio.sleep(0),
    )
    with pytest.raises(TypeError):
        await client.submit("hello")  # type: ignore[arg-type]


async def test_cancelled_submit_frees_its_slot_when_the_answer_comes(sim, start_client):
    r = await start_client(sim.port, window=1)
    await r.client.wait_bound(timeout=5)
    sim.hold_responses()
    abandoned = asyncio.create_task(r.client.submit(message(1)))
    await sim.wait_for(lambda: sim.stats.submits == 1)
    abandoned.cancel()
    next_one = asyncio.create_task(r.client.submit(message(2)))
    sim.release_responses()  # answers the abandoned one: its slot goes to the next submit
    assert (await asyncio.wait_for(next_one, 5)).ok
    assert abandoned.cancelled()


def test_throttle_spaces_reservations_evenly():
    now = [100.0]
    throttle = Throttle(4.0, clock=lambda: now[0])
    assert [throttle.reserve() for _ in range(3)] == [0.0, 0.25, 0.5]
    now[0] = 101.0  # idle time is not banked as a burst
    assert [throttle.reserve() for _ in range(2)] == [0.0, 0.25]
    assert Throttle(None).reserve() == 0.0
    with pytest.raises(ValueError):
        Throttle(0)


def test_reconnect_backoff_is_the_shared_function_within_reconnect_limits():
    class Top(random.Random):
        def random(self) -> float:
            return 1.0

    client = SmppClient(
        BindConfig(
            name="x", host="h", port=1, system_id="a", password="b",
            reconnect_min=0.5, reconnect_max=3.0,
        ),
        on_deliver=lambda pdu: asyncio.sleep(0),
        rng=Top(),
    )  # fmt: skip
    assert [client._backoff(n) for n in range(5)] == [
        backoff_delay(n + 1, 0.5, 3.0, Top()) for n in range(5)
    ]
    assert [client._backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_requests_we_refuse_are_logged_and_the_bind_stays_up(start_client):
    """An SMSC sends an unknown command and a truncated deliver_sm: each gets generic_nack and a
    `pdu.refused` warning naming the command id (it used to be nacked with no log line)."""
    import structlog
    from structlog.testing import capture_logs

    nacks: asyncio.Queue[bytes] = asyncio.Queue()
    writers = []

    async def hostile(reader, writer):
        writers.append(writer)
        await answer_the_bind(reader, writer, "hostile")
        writer.write(struct.pack(">IIII", 16, 0x00000123, 0, 7))  # no such command
        body = b"\0\0\0A\0"  # a deliver_sm cut short
        writer.write(struct.pack(">IIII", 16 + len(body), c.DELIVER_SM, 0, 8) + body)
        while True:
            header = await reader.readexactly(16)
            length, command_id, status, seq = struct.unpack(">IIII", header)
            await reader.readexactly(length - 16)
            if command_id == c.GENERIC_NACK:
                await nacks.put((seq, status))

    server = await asyncio.start_server(hostile, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))
    try:
        with capture_logs() as logs:
            r = await start_client(port)
            await r.client.wait_bound(timeout=5)
            got = [await asyncio.wait_for(nacks.get(), 5) for _ in range(2)]
        assert got == [(7, c.ESME_RINVCMDID), (8, c.ESME_RINVCMDLEN)]
        refused = [e for e in logs if e["event"] == "pdu.refused"]
        assert [e["command_id"] for e in refused] == ["0x00000123", f"0x{c.DELIVER_SM:08x}"]
        assert r.client.bound
        await r.stop()
    finally:
        structlog.configure(**saved)
        server.close()
        for writer in writers:
            writer.close()


async def test_esme_rinvbndsts_makes_the_client_bind_again(start_client):
    """An SMSC that answers a submit with ESME_RINVBNDSTS has lost the bind on its side: the
    client reconnects and binds again rather than sending every submit into the same refusal."""
    binds: list[int] = []
    writers = []

    async def forgetful(reader, writer):
        writers.append(writer)
        binds.append(len(binds))
        first_connection = len(binds) == 1
        await answer_the_bind(reader, writer, "forgetful")
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header = await reader.readexactly(16)
                length, command_id, _, seq = struct.unpack(">IIII", header)
                await reader.readexactly(length - 16)
                if command_id == c.SUBMIT_SM:
                    status = c.ESME_RINVBNDSTS if first_connection else c.ESME_ROK
                    resp = SubmitSmResp(command_status=status, message_id="" if status else "m1")
                    writer.write(encode_with_sequence(resp, seq))
                elif command_id == c.ENQUIRE_LINK:
                    writer.write(encode_with_sequence(EnquireLinkResp(), seq))

    server = await asyncio.start_server(forgetful, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        r = await start_client(port)
        await r.client.wait_bound(timeout=5)
        refused = await asyncio.wait_for(r.client.submit(message(1)), 5)
        assert refused.command_status == c.ESME_RINVBNDSTS
        async with asyncio.timeout(5):
            while len(binds) < 2:
                await asyncio.sleep(0.01)
        accepted = await asyncio.wait_for(r.client.submit(message(2)), 5)
        assert (accepted.ok, accepted.message_id) == (True, "m1")
        await r.stop()
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def test_deliver_sm_resps_of_one_turn_leave_in_one_write(start_client):
    """Receipts whose handlers finish together (their store commit is reported at once) are
    answered together: one segment on the wire, not one send per deliver_sm_resp."""
    from carriers.smpp.pdus import DeliverSm

    count = 20
    reads: list[bytes] = []
    got_all = asyncio.Event()
    writers = []

    async def smsc(reader, writer):
        writers.append(writer)
        await answer_the_bind(reader, writer, "receipts")
        writer.write(
            b"".join(
                encode_with_sequence(DeliverSm(source_addr=f"4477{i:05d}", short_message=b"x"), i)
                for i in range(1, count + 1)
            )
        )
        data = b""
        while data.count(struct.pack(">I", c.DELIVER_SM_RESP)) < count:
            chunk = await reader.read(65536)
            if not chunk:
                return
            reads.append(chunk)
            data += chunk
        got_all.set()

    committed = asyncio.Event()  # the store's one commit for all of them
    handled = 0

    async def on_deliver(pdu) -> None:
        nonlocal handled
        handled += 1
        if handled == count:
            committed.set()
        await committed.wait()

    server = await asyncio.start_server(smsc, "127.0.0.1", 0)
    try:
        r = await start_client(server.sockets[0].getsockname()[1], on_deliver=on_deliver)
        await asyncio.wait_for(got_all.wait(), 5)
        assert len(reads) == 1  # twenty answers, one write
        await r.stop()
    finally:
        server.close()
        for writer in writers:
            writer.close()
