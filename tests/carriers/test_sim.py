"""The SMSC simulator, spoken to with raw PDUs (our codec over a plain socket)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from carriers.sim.cli import build_parser
from carriers.sim.server import Simulator, SimulatorConfig
from carriers.sim.smsc import BindRequested, SmscSession, StreamBroken
from carriers.smpp import constants as c
from carriers.smpp.codec import FrameReader, decode, encode, encode_with_sequence
from carriers.smpp.pdus import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    UnknownPdu,
)
from carriers.smpp.receipts import parse_receipt

pytestmark = pytest.mark.timeout(30)


class Peer:
    """A minimal raw ESME: writes PDUs, reads decoded PDUs, with timeouts."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.frames = FrameReader()
        self.seq = 0

    @classmethod
    async def connect(cls, port):
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, pdu):
        self.seq += 1
        self.writer.write(encode_with_sequence(pdu, pdu.sequence_number or self.seq))

    async def read(self, timeout=5.0):
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames:
                    return decode(frame)
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError
                self.frames.feed(data)

    async def bind(self, cls=BindTransceiver, system_id="smsgw", password="secret"):
        self.send(cls(system_id=system_id, password=password))
        return await self.read()

    def close(self):
        self.writer.close()


@pytest.fixture
async def peer(sim):
    p = await Peer.connect(sim.port)
    yield p
    p.close()


async def test_bind_with_the_right_credentials_is_accepted(sim, peer):
    resp = await peer.bind()
    assert (resp.command_id, resp.command_status) == (c.BIND_TRANSCEIVER_RESP, c.ESME_ROK)
    assert sim.stats.binds == 1


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("smsgw", "nope", c.ESME_RINVPASWD), ("other", "secret", c.ESME_RINVSYSID)],
)
async def test_bad_credentials_are_refused(sim, peer, system_id, password, status):
    resp = await peer.bind(BindTransmitter, system_id, password)
    assert resp.command_status == status
    assert sim.stats.binds == 0 and sim.stats.bind_attempts == 1


async def test_second_bind_on_a_connection_is_ralybnd(sim, peer):
    await peer.bind()
    assert (await peer.bind()).command_status == c.ESME_RALYBND


async def test_submit_before_bind_is_rinvbndsts(sim, peer):
    peer.send(SubmitSm(destination_addr="1"))
    resp = await peer.read()
    assert (resp.command_id, resp.command_status) == (c.SUBMIT_SM_RESP, c.ESME_RINVBNDSTS)


async def test_submit_gets_a_unique_id_then_a_receipt_with_tlvs(sim, peer):
    await peer.bind()
    peer.send(
        SubmitSm(
            source_addr="Acme",
            destination_addr="447700900123",
            short_message=b"hello there",
            registered_delivery=1,
        )
    )
    resp = await peer.read()
    assert isinstance(resp, SubmitSmResp) and resp.message_id
    deliver = await peer.read()
    assert isinstance(deliver, DeliverSm)
    assert (deliver.source_addr, deliver.destination_addr) == ("447700900123", "Acme")
    receipt = parse_receipt(deliver)
    assert (receipt.message_id, receipt.stat, receipt.message_state) == (
        resp.message_id,
        "DELIVRD",
        c.DELIVERED,
    )
    assert receipt.text == "hello there"
    assert deliver.tlv(c.RECEIPTED_MESSAGE_ID).value == resp.message_id.encode() + b"\0"
    peer.send(DeliverSmResp(sequence_number=deliver.sequence_number))
    await sim.wait_for(lambda: sim.stats.receipts_acked == 1)
    (recorded,) = sim.stats.submitted
    assert (recorded.message_id, recorded.short_message) == (resp.message_id, b"hello there")


async def test_no_receipt_unless_registered_delivery(sim, peer):
    await peer.bind()
    peer.send(SubmitSm(destination_addr="1", registered_delivery=0))
    await peer.read()
    peer.send(EnquireLink())
    assert isinstance(await peer.read(), EnquireLinkResp)  # and no deliver_sm before it
    assert sim.stats.receipts_sent == 0


async def test_receipt_goes_to_a_receiver_of_the_same_system_id(sim):
    tx, rx = await Peer.connect(sim.port), await Peer.connect(sim.port)
    try:
        await tx.bind(BindTransmitter)
        tx.send(SubmitSm(destination_addr="1", registered_delivery=1))
        message_id = (await tx.read()).message_id
        await sim.wait_for(lambda: sim.queued() == 1)
        assert sim.stats.receipts_sent == 0
        await rx.bind(BindReceiver)  # the queued receipt comes as soon as a receiver binds
        deliver = await rx.read()
        assert parse_receipt(deliver).message_id == message_id
    finally:
        tx.close()
        rx.close()


async def test_unacknowledged_receipt_is_redelivered_after_reconnect(sim, peer):
    await peer.bind()
    peer.send(SubmitSm(destination_addr="1", registered_delivery=1))
    await peer.read()
    first = await peer.read()
    peer.close()  # gone without deliver_sm_resp
    again = await Peer.connect(sim.port)
    try:
        await again.bind()
        redelivered = await again.read()
        assert parse_receipt(redelivered).message_id == parse_receipt(first).message_id
    finally:
        again.close()


async def test_error_answer_makes_the_simulator_retry(sim, peer):
    await peer.bind()
    peer.send(SubmitSm(destination_addr="1", registered_delivery=1))
    await peer.read()
    deliver = await peer.read()
    peer.send(
        DeliverSmResp(sequence_number=deliver.sequence_number, command_status=c.ESME_RX_T_APPN)
    )
    retry = await peer.read()
    assert retry.short_message == deliver.short_message
    assert sim.stats.deliver_errors == 1


async def test_enquire_link_unknown_command_and_unbind(sim, peer):
    await peer.bind()
    peer.send(EnquireLink(sequence_number=40))
    assert await peer.read() == EnquireLinkResp(sequence_number=40)
    peer.send(UnknownPdu(command_id=c.REPLACE_SM, sequence_number=41, body=b"x\0\0\0\0"))
    assert await peer.read() == GenericNack(sequence_number=41, command_status=c.ESME_RINVCMDID)
    peer.send(Unbind(sequence_number=42))
    assert await peer.read() == UnbindResp(sequence_number=42)
    with pytest.raises(EOFError):
        await peer.read()


async def test_garbage_closes_only_that_connection(sim, peer):
    other = await Peer.connect(sim.port)
    try:
        await other.bind()
        peer.writer.write(b"\xff\xff\xff\xff garbage garbage")
        with pytest.raises((EOFError, ConnectionResetError)):
            await peer.read()
        other.send(EnquireLink())
        assert isinstance(await other.read(), EnquireLinkResp)
    finally:
        other.close()


async def test_decimal_message_ids_and_mo():
    async with Simulator(SimulatorConfig(message_id_format="decimal", send_receipts=False)) as sim:
        peer = await Peer.connect(sim.port)
        try:
            await peer.bind()
            peer.send(SubmitSm(destination_addr="1", registered_delivery=1))
            assert (await peer.read()).message_id.isdigit()
            sim.send_mo(source_addr="447700900123", destination_addr="12345", text="Hi €")
            mo = await peer.read()
            assert isinstance(mo, DeliverSm) and parse_receipt(mo) is None
            assert mo.short_message == b"Hi \x1be"
        finally:
            peer.close()


async def test_disconnect_all_and_stop(sim, peer):
    await peer.bind()
    sim.disconnect_all()
    with pytest.raises((EOFError, ConnectionResetError)):
        await peer.read()
    await sim.stop()
    with pytest.raises(OSError):
        await Peer.connect(sim.port)


def test_smsc_session_sans_io():
    session = SmscSession()
    session.receive_data(encode(BindTransceiver(sequence_number=1, system_id="a", password="b")))
    event = session.next_event()
    assert isinstance(event, BindRequested) and event.pdu.system_id == "a"
    session.answer_bind(1, c.BIND_TRANSCEIVER, "a", c.ESME_ROK)
    assert decode(session.data_to_send()).command_status == 0 and session.can_receive
    session.receive_data(b"\x00\x00\x00\x01")
    assert isinstance(session.next_event(), StreamBroken) and not session.can_receive


def test_cli_parser_defaults():
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.system_id, args.password) == (
        "127.0.0.1",
        2775,
        "smsgw",
        "secret",
    )
    assert args.receipt_delay == 0.05


def test_cli_runs_until_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "carriers.sim", "--port", "0", "--receipt-delay", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        line = ""
        while "listening on" not in line:
            line = proc.stdout.readline()
            assert line, "simulator exited before listening"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_receipts_owed_survive_a_restart_of_the_simulator(tmp_path):
    """With owed_path, a receipt the ESME never acknowledged is delivered again by the next run
    (as a real SMSC keeps it until a receiver binds), and one acknowledged is not."""
    owed = str(tmp_path / "owed.db")
    config = SimulatorConfig(receipt_delay=0.01, owed_path=owed)
    async with Simulator(config) as first:
        peer = await Peer.connect(first.port)
        await peer.bind()
        ids = []
        for n in range(2):
            peer.send(SubmitSm(source_addr="Acme", destination_addr=f"44770090012{n}",
                               short_message=b"owed", registered_delivery=1))  # fmt: skip
            ids.append((await peer.read()).message_id)
        receipts = [await peer.read(), await peer.read()]
        acked = next(r for r in receipts if parse_receipt(r).message_id == ids[0])
        peer.send(DeliverSmResp(sequence_number=acked.sequence_number))  # only the first
        await first.wait_for(lambda: first.stats.receipts_acked == 1)
        peer.close()
    async with Simulator(SimulatorConfig(port=0, owed_path=owed)) as second:
        await second.wait_for(lambda: second.queued() == 1)  # waiting for a receiver to bind
        peer = await Peer.connect(second.port)
        await peer.bind()
        again = await peer.read()
        assert isinstance(again, DeliverSm) and parse_receipt(again).message_id == ids[1]
        peer.send(DeliverSmResp(sequence_number=again.sequence_number))
        await second.wait_for(lambda: second.stats.receipts_acked == 1)
        peer.close()
    async with Simulator(SimulatorConfig(port=0, owed_path=owed)) as third:
        await asyncio.sleep(0.05)  # what is owed is due at once: queued for a receiver by now
        assert third.queued() == 0  # nothing owed any more


async def test_receipts_first_sends_the_receipt_ahead_of_its_response():
    async with Simulator(SimulatorConfig(receipts_first=True)) as sim:
        peer = await Peer.connect(sim.port)
        await peer.bind()
        peer.send(SubmitSm(source_addr="Acme", destination_addr="447700900123",
                           short_message=b"early", registered_delivery=1))  # fmt: skip
        first, second = await peer.read(), await peer.read()
        assert isinstance(first, DeliverSm) and isinstance(second, SubmitSmResp)
        assert parse_receipt(first).message_id == second.message_id
        peer.close()


async def test_disconnect_every_drops_the_link_after_the_answer():
    async with Simulator(SimulatorConfig(disconnect_every=2, send_receipts=False)) as sim:
        peer = await Peer.connect(sim.port)
        await peer.bind()
        for n in range(2):
            peer.send(SubmitSm(source_addr="Acme", destination_addr=f"44770090012{n}",
                               short_message=b"x"))  # fmt: skip
            assert isinstance(await peer.read(), SubmitSmResp)  # answered, even the 2nd
        with pytest.raises(EOFError):
            await peer.read()
        assert sim.stats.scripted_disconnects == 1
        peer.close()
