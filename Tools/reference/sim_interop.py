#!/usr/bin/env python3
"""Interoperability check: drives a Tendon simulated Dynamixel bus with ROBOTIS dynamixel-sdk.

The simulator's replies are checked by the vendor's own client, not by our codec: ping every servo
(and a broadcast ping) and compare model numbers, enable torque, sync write goal positions, watch sync
read present positions move to them, compare a fast sync read and a bulk read with the sync read,
then disable torque. Prints one line per step and a summary; exits 1 on any mismatch, 2 on bad usage.

    python3 Tools/reference/sim_interop.py --port /dev/pts/N --models 1:1120,...,9:1020

Pinned in requirements-hardware.txt (dynamixel-sdk 4.1.0, pyserial 3.5). Run by the Swift test
SimulatorSDKInteropTests against a SimulatedRobot; also usable against `tendon sim`.
"""
import argparse
import sys
import time

from dynamixel_sdk import (COMM_SUCCESS, GroupBulkRead, GroupSyncRead, GroupSyncWrite, PacketHandler,
                           PortHandler)

ADDR_TORQUE_ENABLE = 64
ADDR_HARDWARE_ERROR = 70
ADDR_GOAL_POSITION = 116
ADDR_PRESENT_POSITION = 132
MOVE_TICKS = 300
SETTLE_TICKS = 2


def signed32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def parse_models(text):
    models = {}
    for item in text.split(","):
        dxl_id, number = item.split(":")
        models[int(dxl_id)] = int(number)
    return models


class StopChecks(Exception):
    """A failed step that later steps depend on."""


class Check:
    def __init__(self):
        self.failures = []
        self.passes = 0

    def expect(self, ok, what):
        if ok:
            self.passes += 1
            print(f"ok    {what}")
        else:
            self.failures.append(what)
            print(f"FAIL  {what}")
        return ok


def sync_read_positions(port, ph, ids, fast=False):
    group = GroupSyncRead(port, ph, ADDR_PRESENT_POSITION, 4)
    for dxl_id in ids:
        group.addParam(dxl_id)
    result = group.fastSyncRead() if fast else group.txRxPacket()
    if result != COMM_SUCCESS:
        return None, ph.getTxRxResult(result)
    positions = {}
    for dxl_id in ids:
        if not group.isAvailable(dxl_id, ADDR_PRESENT_POSITION, 4):
            return None, f"no data for id {dxl_id}"
        positions[dxl_id] = signed32(group.getData(dxl_id, ADDR_PRESENT_POSITION, 4))
    return positions, ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True, help="serial device or pty of the simulated bus")
    parser.add_argument("--baud", type=int, default=1_000_000)
    parser.add_argument("--models", required=True, help="expected id:model_number list, e.g. 1:1120,2:1020")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds allowed for the move")
    args = parser.parse_args()
    try:
        expected = parse_models(args.models)
    except ValueError:
        print(f"--models must look like 1:1120,2:1020, got {args.models!r}", file=sys.stderr)
        return 2
    ids = sorted(expected)

    port = PortHandler(args.port)
    ph = PacketHandler(2.0)
    if not port.openPort() or not port.setBaudRate(args.baud):
        print(f"cannot open {args.port} at {args.baud} baud", file=sys.stderr)
        return 1
    check = Check()
    try:
        for dxl_id in ids:
            model, result, error = ph.ping(port, dxl_id)
            check.expect(result == COMM_SUCCESS and error == 0 and model == expected[dxl_id],
                         f"ping id {dxl_id}: model {model} (expected {expected[dxl_id]}), "
                         f"{ph.getTxRxResult(result)}, error {error}")

        found, result = ph.broadcastPing(port)
        check.expect(result == COMM_SUCCESS and {k: v[0] for k, v in found.items()} == expected,
                     f"broadcast ping found {sorted(found)} ({ph.getTxRxResult(result)})")

        for dxl_id in ids:
            result, error = ph.write1ByteTxRx(port, dxl_id, ADDR_TORQUE_ENABLE, 1)
            check.expect(result == COMM_SUCCESS and error == 0, f"torque on id {dxl_id}")

        start, why = sync_read_positions(port, ph, ids)
        if not check.expect(start is not None, f"sync read present positions {start or why}"):
            raise StopChecks()
        goals = {dxl_id: start[dxl_id] + (MOVE_TICKS if start[dxl_id] < 2048 else -MOVE_TICKS) for dxl_id in ids}

        writer = GroupSyncWrite(port, ph, ADDR_GOAL_POSITION, 4)
        for dxl_id, goal in goals.items():
            writer.addParam(dxl_id, list((goal & 0xFFFFFFFF).to_bytes(4, "little")))
        check.expect(writer.txPacket() == COMM_SUCCESS, f"sync write goal positions {goals}")

        moved_midway = False
        deadline = time.monotonic() + args.timeout
        positions = start
        while time.monotonic() < deadline:
            positions, why = sync_read_positions(port, ph, ids)
            if positions is None:
                break
            if all(abs(positions[i] - goals[i]) <= SETTLE_TICKS for i in ids):
                break
            moved_midway = moved_midway or any(positions[i] != start[i] and positions[i] != goals[i] for i in ids)
            time.sleep(0.01)
        check.expect(positions is not None and all(abs(positions[i] - goals[i]) <= SETTLE_TICKS for i in ids),
                     f"servos reached their goals: {positions or why}")
        check.expect(moved_midway, "positions were seen between start and goal (motion, not a jump)")

        fast, why = sync_read_positions(port, ph, ids, fast=True)
        check.expect(fast is not None and positions is not None and all(abs(fast[i] - positions[i]) <= SETTLE_TICKS for i in ids),
                     f"fast sync read agrees with sync read: {fast or why}")

        bulk = GroupBulkRead(port, ph)
        for dxl_id in ids:
            bulk.addParam(dxl_id, ADDR_PRESENT_POSITION, 4)
        result = bulk.txRxPacket()
        bulk_ok = result == COMM_SUCCESS and all(bulk.isAvailable(i, ADDR_PRESENT_POSITION, 4) for i in ids)
        bulk_positions = {i: signed32(bulk.getData(i, ADDR_PRESENT_POSITION, 4)) for i in ids} if bulk_ok else None
        check.expect(bulk_ok and all(abs(bulk_positions[i] - goals[i]) <= SETTLE_TICKS for i in ids),
                     f"bulk read agrees: {bulk_positions or ph.getTxRxResult(result)}")

        for dxl_id in ids:
            error_status, result, error = ph.read1ByteTxRx(port, dxl_id, ADDR_HARDWARE_ERROR)
            check.expect(result == COMM_SUCCESS and error == 0 and error_status == 0,
                         f"id {dxl_id} hardware error status {error_status}")
            result, error = ph.write1ByteTxRx(port, dxl_id, ADDR_TORQUE_ENABLE, 0)
            check.expect(result == COMM_SUCCESS and error == 0, f"torque off id {dxl_id}")
    except StopChecks:
        pass
    finally:
        port.closePort()

    print(f"summary: {check.passes} checks passed, {len(check.failures)} failed")
    for failure in check.failures:
        print(f"  failed: {failure}")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
