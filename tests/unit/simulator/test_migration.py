"""v3_send / v3_receive over TCP (KEYED_STREAM net:a / net:c): the stream working, broken as
observed on Linux 3.19 (observed 12), and the failures before anything moves (spec 7)."""
import os
import socket
import subprocess
import time

import pytest

from conftest import from_template, guest_xml

KS = "linux_module/iface-keyed-stream.c"
CK = "palacios/src/palacios/vmm_checkpoint.c"
FRESH_VCORE = "vcore 0 stopped on pcore 0 0 exits rip=0x000000000000fff0 real physical shadow "


@pytest.fixture(scope="module")
def builds(templates, tmp_path_factory):
    """Hosts built with LIVE_MIGRATION, loaded, two 128 MiB pools: one per migration stream
    setting, made once and copied for each test."""
    base = tmp_path_factory.mktemp("migration")
    for stream in ("broken", "works"):
        host = from_template(templates, base / stream, "fresh")
        host.ok("v3sim", "host", "--features", "checkpoint,migration", "--migration-stream", stream)
        host.ok("v3sim", "load")
        host.reserve(2)
    return base


def built(builds, tmp_path, stream, name="host"):
    """A copy of the `stream` build (a copy of a root is a complete simulated host)."""
    return from_template(builds / stream, tmp_path / name, "sim")


def pair(builds, tmp_path, stream):
    """(source, target): two simulated hosts on this machine with the network stream `stream`."""
    return built(builds, tmp_path, stream, "source"), built(builds, tmp_path, stream, "target")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Whether a socket listens on `port` (/proc/net/tcp state 0A), seen without connecting: the
    receiver takes the first connection as the stream."""
    with open("/proc/net/tcp") as fh:
        return any(line.split()[1].endswith(":%04X" % port) and line.split()[3] == "0A"
                   for line in fh.readlines()[1:])


def start_receive(target, port, dev="/dev/v3-vm0", wait=True):
    proc = subprocess.Popen([os.path.join(target.bin, "v3_receive"), dev, "KEYED_STREAM", "net:a:127.0.0.1:%d" % port],
                            env=target.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while wait and not listening(port):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    return proc


def vcore_lines(host, slot=0):
    block = [b for b in host.read("v3-guests-details").split("-" * 87) if "Entry:        %d\n" % slot in b][0]
    return [line.lstrip(" ") for line in block.splitlines() if line.startswith("   vcore")]


def send(source, port):
    return source.run("v3_send", "/dev/v3-vm0", "KEYED_STREAM", "net:c:127.0.0.1:%d" % port)


def move(pair):
    """Run web on the source, make web on the target, receive there and send: (port, receiver, send result)."""
    source, target = pair
    source.create("web")
    source.ok("v3_launch", "/dev/v3-vm0")
    target.create("web")
    port = free_port()
    recv = start_receive(target, port)
    return port, recv, send(source, port)


def test_working_stream_moves_the_vcore_state_and_leaves_the_source_paused(builds, tmp_path):
    source, target = hosts = pair(builds, tmp_path, "works")
    port, recv, res = move(hosts)
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    assert recv.communicate(timeout=10) == (b"", b"") and recv.returncode == 0
    assert source.guests()[0][2] == "paused"
    assert target.guests()[0][2] == "stopped"
    moved, sent = vcore_lines(target)[0].split(), vcore_lines(source)[0].split()
    # The registers move; the exit counter starts again, as after a load (observed 11).
    assert moved[8] == sent[8] != "rip=0x000000000000fff0" and (moved[6], int(sent[6]) > 0) == ("0", True)
    assert target.status()["vms"][0]["restored_from"] == "KEYED_STREAM:net:a:127.0.0.1:%d" % port
    log = target.kmsg()
    for line in ("palacios (pcore 0): Receiving (live-migrating) Guest to KEYED_STREAM:net:a:127.0.0.1:%d" % port,
                 "palacios (pcore 0): host_ip is 100007f",
                 "palacios (pcore 0): Accepting Connection on INADDR_ANY port:%d" % port):
        assert line in log
    assert "Connecting to 127.0.0.1:%d" % port in source.kmsg()
    target.ok("v3_launch", "/dev/v3-vm0")
    assert target.guests()[0][2] == "running"


def test_broken_stream_fails_both_tools_as_observed_and_moves_nothing(builds, tmp_path, host):
    assert host.status()["host"]["migration_stream"] == "broken"    # the default, as on Linux 3.19
    source, target = hosts = pair(builds, tmp_path, "broken")
    _port, recv, res = move(hosts)
    assert (res.returncode, res.stdout) == (255, b"Error sending the VM\n")
    out = recv.communicate(timeout=10)
    assert (recv.returncode, out) == (255, (b"VM reception failed\n", b""))
    assert source.guests()[0][2] == "running"
    assert target.guests()[0][2] == "stopped" and vcore_lines(target) == [FRESH_VCORE]
    src_lines = [l.split("] ", 1)[1] for l in source.kmsg().splitlines()]
    at = src_lines.index("palacios (pcore 0) %s(2456): Send msg error -14" % KS)
    assert src_lines[at:at + 4] == [
        "palacios (pcore 0) %s(2456): Send msg error -14" % KS,
        "palacios (pcore 0) %s(2885): Could not send data in write_key_net" % KS,
        "palacios (pcore 0 vm web): ERROR at %s(1388): Error sending incremental memory." % CK,
        "palacios (pcore 0): Error sending VM"]
    dst_lines = [l.split("] ", 1)[1] for l in target.kmsg().splitlines()]
    assert dst_lines[-3:] == [
        "palacios (pcore 0) %s(2747): Key mismatch in open_key_net - expect memory_bitmap_bits but got " % KS,
        "palacios (pcore 0 vm web): ERROR at %s(1529): Unable to receive VM" % CK,
        "palacios (pcore 0): Error receiving VM"]


def test_send_nobody_listens_for_fails_before_the_source_changes(builds, tmp_path):
    host = built(builds, tmp_path, "works")
    host.create("web")
    host.ok("v3_launch", "/dev/v3-vm0")
    res = send(host, free_port())
    assert (res.returncode, res.stdout) == (255, b"Error sending the VM\n")
    assert host.guests()[0][2] == "running"
    assert "%s(2456): Send msg error -32" % KS in host.kmsg()


def test_receive_fails_at_once_on_a_port_in_use_and_on_nested_paging(builds, tmp_path):
    host = built(builds, tmp_path, "works")
    host.create("web")
    host.create("nested", guest_xml(tmp_path, "nested", 128, body='<paging mode="nested"/>'))
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        recv = start_receive(host, port, wait=False)
        assert recv.communicate(timeout=10)[0] == b"VM reception failed\n" and recv.returncode == 255
    assert "%s(2546): Bind err: -98" % KS in host.kmsg()
    port = free_port()
    res = host.run("v3_receive", "/dev/v3-vm1", "KEYED_STREAM", "net:a:127.0.0.1:%d" % port, timeout=10)
    assert (res.returncode, res.stdout) == (255, b"VM reception failed\n")
    assert "palacios (pcore 0 vm nested): ERROR at %s(1456): Cannot currently handle nested paging" % CK in host.kmsg()
    assert "Accepting Connection on INADDR_ANY port:%d" % port not in host.kmsg()   # it never listened


def test_the_first_connection_is_the_stream_so_a_port_probe_fails_the_receive(builds, tmp_path):
    host = built(builds, tmp_path, "works")
    host.create("web")
    port = free_port()
    recv = start_receive(host, port)
    socket.create_connection(("127.0.0.1", port)).close()
    assert recv.communicate(timeout=10)[0] == b"VM reception failed\n" and recv.returncode == 255
    assert "Unable to open key for reading on net_stream (recv key len)" in host.kmsg()
    assert vcore_lines(host) == [FRESH_VCORE]


def test_other_stores_cannot_carry_a_migration_stream(builds, tmp_path):
    host = built(builds, tmp_path, "works")
    host.create("web")
    host.ok("v3_launch", "/dev/v3-vm0")
    res = host.run("v3_send", "/dev/v3-vm0", "DIR", str(tmp_path / "d"))
    assert (res.returncode, res.stdout) == (255, b"Error sending the VM\n")
    res = host.run("v3_receive", "/dev/v3-vm0", "KEYED_STREAM", "file:" + str(tmp_path / "d"))
    assert (res.returncode, res.stdout) == (255, b"VM reception failed\n")
    assert host.guests()[0][2] == "stopped"       # a running VM whose receive fails is stopped
    assert not os.path.exists(str(tmp_path / "d"))
