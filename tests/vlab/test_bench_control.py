"""The bench's control socket: bad requests get a clear refusal, never a crash of the bench."""

from __future__ import annotations

import json
import socket

import pytest

from harness.vlab.control import BenchRefused, request


def raw_request(control: str, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(control)
        sock.sendall(payload)
        return json.loads(sock.makefile("rb").readline())


def test_malformed_and_unknown_requests_are_refused_and_the_bench_keeps_serving(sim_board):
    control = sim_board.state().control
    assert raw_request(control, b"{not json\n") == {
        "ok": False,
        "error": "malformed request: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
    }
    assert raw_request(control, b'{"cmd": "explode"}\n') == {
        "ok": False,
        "error": "unknown command 'explode'",
    }
    assert request(control, {"cmd": "status"})["power"] == "on"


def test_fault_on_a_powered_off_board_is_refused_with_the_reason(sim_board):
    sim_board.power("off")
    with pytest.raises(BenchRefused, match="it is powered off"):
        sim_board.fault("hang")
    with pytest.raises(BenchRefused, match="unknown fault 'melt'"):
        sim_board.fault("melt")


def test_a_watchdog_fault_on_the_simulated_board_is_refused_and_the_board_keeps_running(
    sim_board,
):
    with pytest.raises(BenchRefused, match="the simulated board has no watchdog"):
        sim_board.fault("watchdog-inert")
    assert request(sim_board.state().control, {"cmd": "status"})["power"] == "on"


def test_sim_panic_prints_the_panic_line_and_freezes_the_board(sim_board, console_client):
    console = console_client(sim_board.console_port)
    sim_board.fault("panic")
    assert b"Kernel panic - not syncing" in console.read_until(b"not syncing")
    assert sim_board.state().paused
    # Typed only after the freeze: in-flight output may still come, the probe's echo must not.
    console.send("typed-after-panic\n")
    assert b"typed-after-panic" not in console.read_for(1.0)


def test_sim_reset_boots_the_board_again(sim_board):
    before = sim_board.state()
    mark = sim_board.console_mark()
    sim_board.fault("reset")
    sim_board.wait_until_up(since=mark)
    after = sim_board.state()
    assert after.boot_count == before.boot_count + 1
    assert after.boot_id != before.boot_id
