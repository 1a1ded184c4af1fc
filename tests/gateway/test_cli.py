"""The `smsgw` command line, run as a user runs it: a real process on a real store file."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.e2e.harness import ROOT, write_config


def smsgw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_accounts_create_prints_credentials_and_list_shows_the_account(tmp_path):
    config = write_config(tmp_path)
    created = smsgw("accounts", "create", "--name", "acme", "-c", str(config))
    assert created.returncode == 0, created.stderr
    sid = re.search(r"AccountSid: (AC[0-9a-f]{32})", created.stdout).group(1)
    assert re.search(r"AuthToken:  [0-9a-f]{32}", created.stdout)
    listed = smsgw("accounts", "list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert sid in listed.stdout and "acme" in listed.stdout


def test_run_with_a_bad_configuration_names_the_key_and_exits_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[carriers.sim]\nsystem_id = "x"\nport = "twenty"\n')
    result = smsgw("run", "-c", str(config))
    assert result.returncode == 2
    assert "carriers.sim.port: expected an integer, got 'twenty'" in result.stderr


def test_run_reports_a_busy_port_clearly(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, api_port=port)
        result = smsgw("run", "-c", str(config))
    assert result.returncode == 1
    assert f"http: cannot listen on 127.0.0.1:{port}" in result.stderr


def test_sim_help_is_the_simulators_own():
    result = smsgw("sim", "--help")
    assert result.returncode == 0
    assert "--receipt-delay" in result.stdout


def test_api_listener_is_a_tcp_socket_so_asyncio_sets_nodelay():
    # asyncio enables TCP_NODELAY only when the socket's proto is IPPROTO_TCP; a socket made
    # with proto 0 made every API response wait ~40 ms (Nagle + delayed ACK) off uvloop.
    import socket

    from gateway.daemon import _listen

    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
