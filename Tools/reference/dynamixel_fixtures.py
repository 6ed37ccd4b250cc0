#!/usr/bin/env python3
"""Records what the ROBOTIS DynamixelSDK (dynamixel-sdk==4.1.0, Protocol 2.0) puts on the wire and
how it decodes status packets, so Tendon's Swift codec can be checked byte for byte without Python.

The SDK talks to a `CapturePort` (duck-typed PortHandler): `writePort` records the instruction bytes,
`readPort` serves the canned reply queued for that transaction, and the timeout calls are recorded
(the SDK's timeout formula is part of the fixture). Status packets are encoded by the SDK itself
(`txPacket` on a packet whose instruction is 0x55 does header, stuffing and CRC), except the FAST
SYNC/BULK READ reply, which the SDK never builds: that one is assembled here from the SDK's CRC
(per-servo block: error, id, data, CRC of the packet so far; id 0xFE, no stuffing).

Usage: python3 Tools/reference/dynamixel_fixtures.py [--out Tests/Fixtures/dynamixel/sdk_packets.json]
"""
import argparse
import json
import os
import sys

import dynamixel_sdk
from dynamixel_sdk import (COMM_SUCCESS, GroupBulkRead, GroupBulkWrite, GroupSyncRead, GroupSyncWrite,
                           PacketHandler)
from dynamixel_sdk.port_handler import LATENCY_TIMER

SDK_VERSION = "4.1.0"
BAUD = 1_000_000


class CapturePort:
    """Only what Protocol2PacketHandler and the group classes call."""

    def __init__(self, baud=BAUD):
        self.is_using = False
        self.baudrate = baud
        self.tx_time_per_byte = (1000.0 / baud) * 10.0
        self.written = []
        self.rx = bytearray()
        self.reply = b""
        self.timeouts = []  # (packet_length or None, milliseconds)

    def clearPort(self):
        self.rx = bytearray()

    def getBaudRate(self):
        return self.baudrate

    def writePort(self, packet):
        self.written.append(bytes(packet))
        self.rx += self.reply
        self.reply = b""
        return len(packet)

    def readPort(self, length):
        out = bytes(self.rx[:length])
        del self.rx[:length]
        return out

    def setPacketTimeout(self, packet_length):
        ms = (self.tx_time_per_byte * packet_length) + (LATENCY_TIMER * 2.0) + 2.0
        self.timeouts.append((packet_length, ms))

    def setPacketTimeoutMillis(self, msec):
        self.timeouts.append((None, msec))

    def isPacketTimeout(self):
        # Canned replies are complete or deliberately short: once drained, time is up.
        return len(self.rx) == 0


ph = PacketHandler(2.0)


def sdk_encode(dxl_id, instruction, params, error=None):
    """What txPacket means to send: the SDK's addStuffing (its return value), header, length, CRC.

    dynamixel-sdk 4.1.0's txPacket calls addStuffing but ignores its result, and addStuffing rebinds
    (does not modify) the packet whenever stuffing changes the length, so the Python SDK sends packets
    that need stuffing unstuffed. The C/C++ SDKs stuff in place; the protocol requires stuffing.
    """
    body = [instruction] + ([] if error is None else [error]) + list(params)
    pkt = [0xFF, 0xFF, 0xFD, 0x00, dxl_id, (len(body) + 2) & 0xFF, (len(body) + 2) >> 8] + body + [0, 0]
    pkt = ph.addStuffing(pkt)
    crc = ph.updateCRC(0, pkt, len(pkt) - 2)
    pkt[-2] = crc & 0xFF
    pkt[-1] = crc >> 8
    return bytes(pkt)


def sdk_status(dxl_id, error, params):
    """A status packet as the SDK encodes packets (see sdk_encode)."""
    return sdk_encode(dxl_id, 0x55, params, error)


def fast_status(blocks):
    """FAST SYNC/BULK READ reply: id 0xFE, length for all blocks, each block's CRC cumulative."""
    total = sum(4 + len(d) for (_, _, d) in blocks)
    length = 1 + total
    pkt = [0xFF, 0xFF, 0xFD, 0x00, 0xFE, length & 0xFF, length >> 8, 0x55]
    for (dxl_id, error, data) in blocks:
        pkt += [error, dxl_id] + list(data)
        crc = ph.updateCRC(0, pkt, len(pkt))
        pkt += [crc & 0xFF, crc >> 8]
    return bytes(pkt)


def le(value, size):
    return [(value >> (8 * k)) & 0xFF for k in range(size)]


instructions = []
statuses = []


def record_tx(name, port, dxl_id, instruction, params, index=0):
    sent = port.written[index]
    intended = sdk_encode(dxl_id, instruction, params)
    entry = {"name": name, "id": dxl_id, "instruction": instruction, "params": list(params),
             "bytes": list(intended)}
    if sent != intended:
        # Only packets that need stuffing differ (see sdk_encode).
        entry["python_sdk_sent_unstuffed"] = list(sent)
    if port.timeouts:
        entry["timeout_packet_length"], entry["timeout_ms"] = port.timeouts[0]
    instructions.append(entry)


def record_status(name, wire, decoded):
    statuses.append({"name": name, "bytes": list(wire), "sdk": decoded})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures",
                                                   "dynamixel", "sdk_packets.json"))
    args = ap.parse_args()
    if getattr(dynamixel_sdk, "__version__", SDK_VERSION) != SDK_VERSION:
        print(f"warning: fixtures are pinned to dynamixel-sdk {SDK_VERSION}", file=sys.stderr)

    # PING id 1, reply: XM540-W270 (1120), firmware 46.
    port = CapturePort()
    reply = sdk_status(1, 0, le(1120, 2) + [46])
    port.reply = reply
    model, result, error = ph.ping(port, 1)
    record_tx("ping", port, 1, 0x01, [])
    record_status("ping_reply", reply, {"result": result, "error": error, "model_number": model})

    # READ 4 bytes of Present Position (132) from id 3.
    port = CapturePort()
    reply = sdk_status(3, 0, le(2100, 4))
    port.reply = reply
    value, result, error = ph.read4ByteTxRx(port, 3, 132)
    record_tx("read4", port, 3, 0x02, le(132, 2) + le(4, 2))
    record_status("read4_reply", reply, {"result": result, "error": error, "value": value, "id": 3})

    # READ 1 byte (Hardware Error Status, 70) with the alert bit in the error byte.
    port = CapturePort()
    reply = sdk_status(5, 0x80, [0x24])
    port.reply = reply
    value, result, error = ph.read1ByteTxRx(port, 5, 70)
    record_tx("read1", port, 5, 0x02, le(70, 2) + le(1, 2))
    record_status("read1_alert_reply", reply, {"result": result, "error": error, "value": value, "id": 5})

    # READ 2 bytes (Present Current, 126) answered with a data range error.
    port = CapturePort()
    reply = sdk_status(6, 0x04, [0x10, 0xFF])
    port.reply = reply
    value, result, error = ph.read2ByteTxRx(port, 6, 126)
    record_tx("read2", port, 6, 0x02, le(126, 2) + le(2, 2))
    record_status("read2_error_reply", reply, {"result": result, "error": error, "value": value, "id": 6})

    # Replies whose data contain the header pattern once and twice (FF FF FD FD needs two stuffing bytes):
    # the SDK's removeStuffing must give back "intended".
    for (name, data) in [("stuffed_reply", [0x10, 0xFF, 0xFF, 0xFD, 0x00, 0x20, 0x30, 0x40, 0x50, 0x60]),
                         ("stuffed_twice_reply", [0xFF, 0xFF, 0xFD, 0x00, 0xFF, 0xFF, 0xFD, 0xFD, 0x01, 0x02])]:
        port = CapturePort()
        reply = sdk_status(2, 0, data)
        port.reply = reply
        got, result, error = ph.readTxRx(port, 2, 124, 10)
        if name == "stuffed_reply":
            record_tx("read10", port, 2, 0x02, le(124, 2) + le(10, 2))
        record_status(name, reply, {"result": result, "error": error, "data": list(got), "id": 2,
                                    "intended": data})

    # Corrupted CRC: the SDK reports COMM_RX_CORRUPT.
    port = CapturePort()
    bad = bytearray(sdk_status(3, 0, le(2100, 4)))
    bad[-1] ^= 0x5A
    port.reply = bytes(bad)
    value, result, error = ph.read4ByteTxRx(port, 3, 132)
    record_status("corrupt_crc_reply", bytes(bad), {"result": result, "corrupt": True, "id": 3})

    # WRITE 1/2/4 bytes (each acknowledged by an empty status packet).
    for (name, dxl_id, addr, size, value) in [("write1", 1, 64, 1, 1), ("write2", 4, 100, 2, 0x8123),
                                              ("write4", 7, 116, 4, 0x12345678)]:
        port = CapturePort()
        port.reply = sdk_status(dxl_id, 0, [])
        fn = {1: ph.write1ByteTxRx, 2: ph.write2ByteTxRx, 4: ph.write4ByteTxRx}[size]
        result, error = fn(port, dxl_id, addr, value)
        assert result == COMM_SUCCESS, name
        record_tx(name, port, dxl_id, 0x03, le(addr, 2) + le(value, size))
    record_status("write_ack", sdk_status(7, 0, []), {"result": 0, "error": 0, "id": 7})

    # WRITE whose data holds the header pattern (instruction-side stuffing), and negative goal velocity.
    port = CapturePort()
    port.reply = sdk_status(8, 0, [])
    result, error = ph.writeTxRx(port, 8, 116, 4, [0xFF, 0xFF, 0xFD, 0x00])
    record_tx("write_stuffed", port, 8, 0x03, le(116, 2) + [0xFF, 0xFF, 0xFD, 0x00])
    port = CapturePort()
    port.reply = sdk_status(8, 0, [])
    result, error = ph.write4ByteTxRx(port, 8, 104, (-300) & 0xFFFFFFFF)
    record_tx("write4_negative", port, 8, 0x03, le(104, 2) + le((-300) & 0xFFFFFFFF, 4))

    # REBOOT id 9.
    port = CapturePort()
    port.reply = sdk_status(9, 0, [])
    result, error = ph.reboot(port, 9)
    record_tx("reboot", port, 9, 0x08, [])

    # SYNC READ 9 ids: Present Current+Velocity+Position (126, 10 bytes) and Present Position (132, 4).
    ids = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    for (addr, length) in [(126, 10), (132, 4)]:
        port = CapturePort()
        group = GroupSyncRead(port, ph, addr, length)
        for i in ids:
            group.addParam(i)
        replies = []
        for i in ids:
            values = []
            if length == 10:
                values = le((-5 * i) & 0xFFFF, 2) + le((-i) & 0xFFFFFFFF, 4) + le(2048 + 100 * i, 4)
            else:
                values = le(1000 + i, 4)
            err = 0x80 if i == 4 else 0
            replies.append(sdk_status(i, err, values))
        port.reply = b"".join(replies)
        result = group.txRxPacket()
        decoded = {str(i): list(group.data_dict[i]) for i in ids}
        record_tx(f"sync_read_{addr}_{length}", port, 0xFE, 0x82, le(addr, 2) + le(length, 2) + ids)
        record_status(f"sync_read_{addr}_{length}_replies", port.reply or b"".join(replies),
                      {"result": result, "address": addr, "length": length, "ids": ids, "data": decoded,
                       "errors": {str(i): (0x80 if i == 4 else 0) for i in ids}})

    # FAST SYNC READ 9 ids of Present Position; one reply, and one whose data holds FF FF FD (no stuffing).
    for (suffix, datas) in [("", {i: le(2000 + i, 4) for i in ids}),
                            ("_header_in_data", {i: ([0xFF, 0xFF, 0xFD, 0x00] if i == 5 else le(2000 + i, 4))
                                                 for i in ids})]:
        port = CapturePort()
        group = GroupSyncRead(port, ph, 132, 4)
        for i in ids:
            group.addParam(i)
        reply = fast_status([(i, 0, datas[i]) for i in ids])
        port.reply = reply
        result = group.fastSyncRead()
        if suffix == "":
            record_tx("fast_sync_read_132_4", port, 0xFE, 0x8A, le(132, 2) + le(4, 2) + ids)
        record_status("fast_sync_read_reply" + suffix, reply,
                      {"result": result, "address": 132, "length": 4, "ids": ids,
                       "data": {str(i): list(group.data_dict[i]) for i in ids}})

    # SYNC WRITE Goal Position for 9 ids.
    port = CapturePort()
    group = GroupSyncWrite(port, ph, 116, 4)
    goals = {i: (2048 + 37 * i - 200) & 0xFFFFFFFF for i in ids}
    goals[9] = (-1) & 0xFFFFFFFF
    for i in ids:
        group.addParam(i, le(goals[i], 4))
    assert group.txPacket() == COMM_SUCCESS
    params = le(116, 2) + le(4, 2)
    for i in ids:
        params += [i] + le(goals[i], 4)
    record_tx("sync_write_116_4", port, 0xFE, 0x83, params)

    # BULK READ: id 1 Present Position (132,4), id 2 Hardware Error Status (70,1), id 3 Present Current (126,2).
    entries = [(1, 132, 4), (2, 70, 1), (3, 126, 2)]
    port = CapturePort()
    group = GroupBulkRead(port, ph)
    for (i, a, n) in entries:
        group.addParam(i, a, n)
    payloads = {1: le(3000, 4), 2: [0x20], 3: le((-7) & 0xFFFF, 2)}
    replies = [sdk_status(i, 0, payloads[i]) for (i, _, _) in entries]
    port.reply = b"".join(replies)
    result = group.txRxPacket()
    params = []
    for (i, a, n) in entries:
        params += [i] + le(a, 2) + le(n, 2)
    record_tx("bulk_read", port, 0xFE, 0x92, params)
    record_status("bulk_read_replies", b"".join(replies),
                  {"result": result, "entries": [[i, a, n] for (i, a, n) in entries],
                   "data": {str(i): list(group.data_dict[i][0]) for (i, _, _) in entries}})

    # FAST BULK READ (same entries): instruction and the SDK's decoding of the combined reply.
    port = CapturePort()
    group = GroupBulkRead(port, ph)
    for (i, a, n) in entries:
        group.addParam(i, a, n)
    reply = fast_status([(i, 0, payloads[i]) for (i, _, _) in entries])
    port.reply = reply
    result = group.fastBulkRead()
    record_tx("fast_bulk_read", port, 0xFE, 0x9A, params)
    record_status("fast_bulk_read_reply", reply,
                  {"result": result, "entries": [[i, a, n] for (i, a, n) in entries],
                   "data": {str(i): list(group.data_dict[i][0]) for (i, _, _) in entries}})

    # BULK WRITE: id 1 Goal Position, id 2 LED, id 3 Goal Current.
    port = CapturePort()
    group = GroupBulkWrite(port, ph)
    bw = [(1, 116, le(1234, 4)), (2, 65, [1]), (3, 102, le((-50) & 0xFFFF, 2))]
    for (i, a, d) in bw:
        group.addParam(i, a, len(d), d)
    assert group.txPacket() == COMM_SUCCESS
    params = []
    for (i, a, d) in bw:
        params += [i] + le(a, 2) + le(len(d), 2) + d
    record_tx("bulk_write", port, 0xFE, 0x93, params)

    out = {
        "sdk": f"dynamixel-sdk {SDK_VERSION} (Protocol2PacketHandler)",
        "baud": BAUD,
        "timeout_formula_ms": "tx_time_per_byte * packet_length + 2 * LATENCY_TIMER + 2.0, "
                              "tx_time_per_byte = 10000 / baud ms, LATENCY_TIMER = %d; packet_length: "
                              "READ length+11, other single-servo instructions 11, SYNC READ (11+length)*ids, "
                              "BULK READ sum(length+10)" % LATENCY_TIMER,
        "instructions": instructions,
        "statuses": statuses,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {len(instructions)} instruction and {len(statuses)} status fixtures to {args.out}")


if __name__ == "__main__":
    main()
