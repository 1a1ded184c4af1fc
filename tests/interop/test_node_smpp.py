"""The daemon against an SMSC written elsewhere (npm `smpp`, via node_smsc.js): bind, submit,
receipts, long messages both ways, TLS, throttling and decimal receipt ids."""

from __future__ import annotations

import asyncio

import pytest
import trustme

from tests.e2e.test_inbound import wait_for_inbound

pytestmark = pytest.mark.timeout(60)

GSM_BODY = "Interop over SMPP 3.4 with an SMSC that is not ours. " * 8  # 3 parts of GSM-7
UCS2_BODY = "Grüße aus Zürich 😀 — " * 8  # UCS-2, with astral characters


async def gateway_for(start_gateway, smsc, extra: str = ""):
    gateway = await start_gateway(simulator=False, carrier_port=smsc.port, extra=extra)
    await smsc.wait_for(lambda: [b for b in smsc.of("bind") if b["ok"]])
    return gateway


async def send_all(gateway, bodies: list[str]) -> list[str]:
    sids = []
    for n, body in enumerate(bodies):
        response = await gateway.send(To=f"+1415555{n:04d}", From="+15017122661", Body=body)
        assert response.status_code == 201, response.text
        sids.append(response.json()["sid"])
    return sids


async def settled(gateway, sids: list[str], timeout: float = 30) -> list[dict]:
    async with asyncio.timeout(timeout):
        while True:
            messages = [await gateway.fetch(sid) for sid in sids]
            if all(m["status"] in ("delivered", "undelivered", "failed") for m in messages):
                return messages
            await asyncio.sleep(0.05)


def texts_of(submits: list[dict], destination: str) -> str:
    """The parts one destination got, in UDH order, joined as node-smpp decoded them."""
    mine = [s for s in submits if s["destination_addr"] == destination and s["status"] == 0]
    mine.sort(key=lambda s: int(s["udh"][0][-2:], 16) if s["udh"] else 0)
    return "".join(s["text"] for s in mine)


async def test_bind_submit_and_receipts(start_gateway, node_smsc):
    smsc = await node_smsc()
    gateway = await gateway_for(start_gateway, smsc)
    messages = await settled(gateway, await send_all(gateway, ["one", "two", "three"]))
    assert [m["status"] for m in messages] == ["delivered"] * 3
    assert smsc.of("bind")[0]["kind"] == "bind_transceiver"
    submits = smsc.of("submit")
    assert {(s["source_addr_ton"], s["dest_addr_ton"], s["dest_addr_npi"]) for s in submits} == {
        (1, 1, 1)
    }
    assert {s["registered_delivery"] & 1 for s in submits} == {1}
    assert [s["text"] for s in submits] == ["one", "two", "three"]
    assert [r["status"] for r in smsc.of("deliver_resp")] == [0, 0, 0]


async def test_long_messages_reach_the_peer_whole_in_gsm7_and_ucs2(start_gateway, node_smsc):
    smsc = await node_smsc()
    gateway = await gateway_for(start_gateway, smsc)
    messages = await settled(gateway, await send_all(gateway, [GSM_BODY, UCS2_BODY]))
    assert [m["status"] for m in messages] == ["delivered", "delivered"]
    submits = smsc.of("submit")
    gsm = [s for s in submits if s["destination_addr"] == "14155550000"]
    ucs2 = [s for s in submits if s["destination_addr"] == "14155550001"]
    assert len(gsm) == int(messages[0]["num_segments"]) == 3
    assert len(ucs2) == int(messages[1]["num_segments"])
    # Every part carries an 8-bit concatenation element (IEI 00, length 3) and the same ref.
    for parts in (gsm, ucs2):
        headers = [s["udh"][0] for s in parts]
        assert all(h.startswith("0003") for h in headers), headers
        assert len({h[4:6] for h in headers}) == 1
    assert {s["data_coding"] for s in gsm} == {0} and {s["data_coding"] for s in ucs2} == {8}
    assert texts_of(submits, "14155550000") == GSM_BODY
    assert texts_of(submits, "14155550001") == UCS2_BODY


async def test_sar_and_message_payload_long_messages(start_gateway, node_smsc):
    smsc = await node_smsc()
    sar = await gateway_for(start_gateway, smsc, extra='long_messages = "sar"')
    [message] = await settled(sar, await send_all(sar, [GSM_BODY]))
    submits = smsc.of("submit")
    assert message["status"] == "delivered" and len(submits) == 3
    refs = {s["sar"][0] for s in submits}
    assert len(refs) == 1 and sorted(s["sar"][1:] for s in submits) == [[3, 1], [3, 2], [3, 3]]
    assert all(not s["udh"] and not s["esm_class"] & 0x40 for s in submits)
    assert "".join(s["text"] for s in sorted(submits, key=lambda s: s["sar"][2])) == GSM_BODY


async def test_message_payload_long_messages(start_gateway, node_smsc):
    smsc = await node_smsc()
    gateway = await gateway_for(start_gateway, smsc, extra='long_messages = "payload"')
    [message] = await settled(gateway, await send_all(gateway, [UCS2_BODY]))
    [submit] = smsc.of("submit")
    assert message["status"] == "delivered" and message["num_segments"] == "1"
    assert (submit["payload"], submit["text"], submit["data_coding"]) == (UCS2_BODY, "", 8)


async def test_a_long_mo_from_the_peer_is_reassembled(start_gateway, node_smsc, tmp_path):
    smsc = await node_smsc()
    gateway = await gateway_for(start_gateway, smsc)
    first, second = "Reply from a handset, long enough to need ", "two parts."
    smsc.send_mo(
        source_addr="447911123456",
        destination_addr="15017122661",
        parts=[{"udh": "0500033c0202", "text": second}, {"udh": "0500033c0201", "text": first}],
    )
    [sid] = await wait_for_inbound(tmp_path / "smsgw.db", 1)
    message = await gateway.fetch(sid)
    assert (message["direction"], message["body"], message["from"]) == (
        "inbound", first + second, "+447911123456"
    )  # fmt: skip
    await smsc.wait_for(lambda: len(smsc.of("deliver_resp")) == 2)
    assert {r["status"] for r in smsc.of("deliver_resp")} == {0}


async def test_receipts_with_decimal_ids_for_hex_responses(start_gateway, node_smsc):
    smsc = await node_smsc(id_format="hex", receipt_id_format="dec")
    gateway = await gateway_for(start_gateway, smsc, extra='receipt_id_format = "dec"')
    messages = await settled(gateway, await send_all(gateway, ["a", "b"]))
    assert [m["status"] for m in messages] == ["delivered", "delivered"]
    ids = [s["message_id"] for s in smsc.of("submit")]
    assert ids == ["3E8", "3E9"]  # 1000 and 1001, answered in hex, receipted in decimal


async def test_throttling_slows_the_bind_and_fails_nothing(start_gateway, node_smsc):
    smsc = await node_smsc(max_rate=5)
    gateway = await gateway_for(start_gateway, smsc)
    messages = await settled(gateway, await send_all(gateway, [f"m{n}" for n in range(15)]))
    assert [m["status"] for m in messages] == ["delivered"] * 15
    statuses = [s["status"] for s in smsc.of("submit")]
    assert 0x58 in statuses  # the peer did throttle
    assert statuses.count(0) == 15  # and each message was accepted exactly once


async def test_smpp_over_tls(start_gateway, node_smsc, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    key_file, cert_file, ca_file = (tmp_path / n for n in ("key.pem", "cert.pem", "ca.pem"))
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    smsc = await node_smsc(key=key_file, cert=cert_file)
    gateway = await gateway_for(start_gateway, smsc, extra=f'tls = true\ntls_ca_file = "{ca_file}"')
    messages = await settled(gateway, await send_all(gateway, ["over TLS"]))
    assert messages[0]["status"] == "delivered"


def test_the_peer_is_not_ours():
    """The point of these tests: node_smsc.js speaks through the npm package's codec."""
    from tests.interop.conftest import HERE

    assert (HERE / "node_modules" / "smpp" / "lib" / "pdu.js").is_file()
    assert "require('smpp')" in (HERE / "node_smsc.js").read_text()
