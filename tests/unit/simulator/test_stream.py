"""v3_stream as observed on real Palacios (interface spec, observed items 15 and 16).

v3_stream never exits by itself, so every client here runs under a deadline and is ended
by a signal (SIGINT: "Bye", 0; SIGTERM: 143) or killed by the fixture's cleanup.
"""
import os
import signal
import subprocess
import time

import pytest

STREAM_XML = ('<vm class="PC"><memory>128</memory><cores count="1"><core/></cores><devices>'
              '<device class="SERIAL" id="serial"/>'
              '<device class="CHAR_STREAM" id="stream1" name="com1"><frontend tag="serial" com_port="1"/></device>'
              '</devices></vm>')
DEADLINE = 20


@pytest.fixture
def streams(ready, tmp_path):
    """The ready host with VM 0 declaring stream com1; yields a client starter, kills leftovers."""
    xml = tmp_path / "stream.xml"
    xml.write_text(STREAM_XML)
    assert ready.create("s", str(xml)) == 0
    started = []

    def client(*args, stdin=subprocess.PIPE):
        proc = subprocess.Popen([os.path.join(ready.bin, "v3_stream")] + list(args), stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ready.env)
        started.append(proc)
        return proc
    yield client
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=DEADLINE)


def wait_for(predicate, what):
    deadline = time.time() + DEADLINE
    while not predicate():
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


def connected(host, name="com1"):
    return lambda: host.kmsg().count("Stream (%s) connected" % name)


def test_connect_in_any_state_prints_nothing_and_sigint_says_bye(ready, streams):
    proc = streams("/dev/v3-vm0", "com1")            # VM stopped, never launched
    wait_for(connected(ready), "the connection")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=DEADLINE)
    assert (proc.returncode, out, err) == (0, b"", b"Bye\n")
    ready.ok("v3_launch", "/dev/v3-vm0")
    ready.ok("v3_pause", "/dev/v3-vm0")
    proc = streams("/dev/v3-vm0", "com1")
    wait_for(lambda: connected(ready)() == 2, "the second connection")
    proc.terminate()
    out, err = proc.communicate(timeout=DEADLINE)
    assert (proc.returncode, out, err) == (-signal.SIGTERM, b"", b"")     # 143 in a shell


def test_kernel_keeps_4096_bytes_of_output_until_a_client_connects(ready, streams):
    ready.ok("v3sim", "stream-write", "0", "com1", "x" * 4000)
    ready.ok("v3sim", "stream-write", "0", "com1", "y" * 200)      # only 96 of these fit
    proc = streams("/dev/v3-vm0", "com1")
    wait_for(connected(ready), "the connection")
    ready.ok("v3sim", "stream-write", "0", "com1", "live")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=DEADLINE)
    assert out == b"x" * 4000 + b"y" * 96 + b"live"
    assert err == b"Bye\n"


def test_every_failure_prints_one_message_and_dmesg_tells_which(ready, streams, tmp_path):
    first = streams("/dev/v3-vm0", "com1")
    wait_for(connected(ready), "the connection")
    plain = tmp_path / "plain.xml"
    plain.write_text('<vm class="PC"><memory>128</memory><cores count="1"><core/></cores></vm>')
    assert ready.create("plain", str(plain)) == 1
    cases = [("/dev/v3-vm0", "com1", "Stream (com1) already connected"),       # second client
             ("/dev/v3-vm0", "com2", "Could not find stream (com2)"),          # wrong name
             ("/dev/v3-vm1", "com1", "Could not find stream (com1)"),          # VM without the device
             ("/dev/v3-vm7", "com1", None)]                                    # no such device
    for dev, name, dmesg in cases:
        res = ready.run("v3_stream", dev, name, timeout=DEADLINE)
        assert (res.returncode, res.stdout, res.stderr) == (255, b"", b"Error opening VM device: %s\n" % dev.encode())
        if dmesg:
            assert dmesg in ready.kmsg()
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=DEADLINE)
    res = ready.run("v3_stream", timeout=DEADLINE)
    assert (res.returncode, res.stdout) == (0, b"")
    assert res.stderr.startswith(b"usage: v3_stream")


def test_stdin_eof_does_not_end_the_client(ready, streams):
    """Observed: at stdin EOF the real tool spins instead of exiting."""
    proc = streams("/dev/v3-vm0", "com1", stdin=subprocess.DEVNULL)
    wait_for(connected(ready), "the connection")
    time.sleep(0.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.communicate(timeout=DEADLINE)[1] == b"Bye\n"


def test_a_killed_client_releases_the_stream(ready, streams):
    proc = streams("/dev/v3-vm0", "com1")
    wait_for(connected(ready), "the connection")
    proc.kill()
    proc.communicate(timeout=DEADLINE)
    again = streams("/dev/v3-vm0", "com1")
    wait_for(lambda: connected(ready)() == 2, "the reconnection")
    again.send_signal(signal.SIGINT)
    assert again.communicate(timeout=DEADLINE)[1] == b"Bye\n"


def test_stop_while_connected_is_fine_but_free_hangs_the_host_until_reboot(ready, streams):
    proc = streams("/dev/v3-vm0", "com1")
    wait_for(connected(ready), "the connection")
    ready.ok("v3_launch", "/dev/v3-vm0")
    ready.ok("v3_stop", "/dev/v3-vm0")
    assert ready.guests()[0][2] == "stopped"
    with pytest.raises(subprocess.TimeoutExpired):
        ready.run("v3_free", "0", timeout=2)                   # never returns (observed item 15)
    assert "ringbuf_data_len" in ready.kmsg()
    for tool, args in (("v3_create", ("-b", "x.xml", "n")), ("v3_launch", ("/dev/v3-vm0",)), ("v3_mem", ("-a", "128"))):
        res = ready.run(tool, *args, timeout=DEADLINE)
        assert res.returncode == 124, tool
        assert b"THE SIMULATED HOST IS HUNG" in res.stderr and b"v3sim reboot" in res.stderr, tool
    assert ready.status()["hung"].startswith("v3_free of VM 0 (s) while a v3_stream client was connected")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=DEADLINE)
    ready.ok("v3sim", "reboot")
    assert ready.status()["hung"] is None
    ready.ok("v3sim", "load")
