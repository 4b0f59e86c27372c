"""v3_save / v3_load / v3_send / v3_receive with and without the build features."""
import json
import os
import time

import pytest

from conftest import BIOS_XML

OPTIONS = (" optionmask consists of the sum of any of the following\n 0    none\n 1    skip memory\n"
           " 2    skip devices\n 4    skip cores\n 8    skip architecture-specific core state\n")


def build(host, features):
    """Reload the module as a build with ``features``; hot-remove two fresh 128 MiB pools
    (the pools of the previous load are gone, their memory stays offline)."""
    if host.status()["loaded"]:
        host.ok("v3sim", "unload")
    host.ok("v3sim", "host", "--features", features)
    host.ok("v3sim", "load")
    host.reserve(2)
    return host


@pytest.fixture
def chk(host):
    return build(host, "checkpoint,migration")


def vcores(host, slot=0):
    lines = [l for l in host.read("v3-guests-details").split("-" * 87) if "Entry:        %d\n" % slot in l][0]
    return [l for l in lines.splitlines() if l.startswith("   vcore")]


def test_usage_and_argument_errors(ready):
    for tool, head in (("v3_save", "usage: v3_save"), ("v3_load", "usage: v3_load"),
                       ("v3_send", "Usage: ./v3_send"), ("v3_receive", "Usage: ./v3_receive")):
        res = ready.run(tool, "/dev/v3-vm0", "DIR")
        assert (res.returncode, res.stdout.decode()) == (
            255, head + " <vm_device> <store> <url> [optionmask]\n" + OPTIONS), tool
    res = ready.run("v3_save", "/dev/v3-vm0", "S" * 128, "/tmp/x")
    assert (res.returncode, res.stdout) == (255, b"ERROR: Checkpoint store name longer than maximum size (128)\n")
    res = ready.run("v3_save", "/dev/v3-vm0", "DIR", "/" + "u" * 255)
    assert (res.returncode, res.stdout) == (255, b"ERROR: Checkpoint URL longer than maximum size (256)\n")
    res = ready.run("v3_load", "/dev/v3-vm0", "DIR", "/tmp/x")
    assert (res.returncode, res.stdout) == (255, b"Error opening VM device: /dev/v3-vm0\n")


def test_without_the_feature_the_ioctl_is_unhandled(ready, tmp_path):
    ready.create("vm1")
    url = str(tmp_path / "ck")
    assert ready.run("v3_save", "/dev/v3-vm0", "DIR", url).returncode == 0     # result ignored
    assert ready.run("v3_load", "/dev/v3-vm0", "DIR", url).returncode == 0
    res = ready.run("v3_send", "/dev/v3-vm0", "DIR", url)
    assert (res.returncode, res.stdout) == (255, b"Error sending the VM\n")
    res = ready.run("v3_receive", "/dev/v3-vm0", "DIR", url)
    assert (res.returncode, res.stdout) == (255, b"VM reception failed\n")
    assert not os.path.exists(url)
    log = ready.kmsg()
    for cmd in (28, 27, 34, 35):
        assert "palacios (pcore 0): Unhandled ctrl cmd: %d" % cmd in log
    build(ready, "checkpoint")
    ready.create("vm1")
    assert ready.run("v3_save", "/dev/v3-vm0", "DIR", url).returncode == 0
    assert os.path.exists(os.path.join(url, "v3sim-checkpoint.json"))
    assert ready.run("v3_send", "/dev/v3-vm0", "DIR", url).returncode == 255   # no LIVE_MIGRATION


def test_save_running_vm_keeps_running_and_load_restores_into_new_vm(chk, tmp_path):
    chk.create("src")
    chk.ok("v3_launch", "/dev/v3-vm0")
    time.sleep(0.05)
    url = str(tmp_path / "a" / "b")
    res = chk.run("v3_save", "/dev/v3-vm0", "DIR", url)
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    assert chk.guests()[0][2] == "running"
    with open(os.path.join(url, "v3sim-checkpoint.json")) as fh:
        saved = json.load(fh)
    assert saved["vm_name"] == "src" and saved["mem_bytes"] == 134217728 and saved["num_cores"] == 1
    chk.ok("v3_stop", "/dev/v3-vm0")
    chk.ok("v3_free", "0")
    chk.create("dst")
    assert chk.ok("v3_load", "/dev/v3-vm0", "DIR", url) == ""
    line = vcores(chk)[0].split()
    assert (line[2], int(line[6]), line[8]) == ("stopped", saved["vcores"][0]["exits"],
                                                "rip=0x%016x" % saved["vcores"][0]["rip"])
    assert chk.status()["vms"][0]["restored_from"] == "DIR:" + url
    chk.ok("v3_launch", "/dev/v3-vm0")
    assert chk.guests()[0][2] == "running"


def test_load_of_mismatching_checkpoint_fails_silently(chk, tmp_path):
    url = str(tmp_path / "ck")
    chk.create("small")
    chk.ok("v3_save", "/dev/v3-vm0", "DIR", url)
    chk.create("big", BIOS_XML, "mem=128")
    chk.ok("v3_launch", "/dev/v3-vm1")
    chk.ok("v3_free", "0")
    chk.reserve(1)
    chk.create("bigger", BIOS_XML, "mem=256")
    assert chk.run("v3_load", "/dev/v3-vm0", "DIR", url).returncode == 0
    assert "Checkpoint does not match VM" in chk.kmsg()
    assert chk.status()["vms"][0]["restored_from"] is None
    assert chk.run("v3_load", "/dev/v3-vm0", "DIR", str(tmp_path / "missing")).returncode == 0
    assert chk.run("v3_load", "/dev/v3-vm1", "DIR", str(tmp_path / "missing")).returncode == 0
    assert chk.guests()[1][2] == "stopped"          # a running VM whose load fails is stopped


def test_keyed_stream_mem_and_debug_stores(chk):
    chk.create("vm1")
    chk.ok("v3_save", "/dev/v3-vm0", "KEYED_STREAM", "mem:snap1")
    chk.ok("v3_load", "/dev/v3-vm0", "KEYED_STREAM", "mem:snap1")
    assert chk.status()["vms"][0]["restored_from"] == "KEYED_STREAM:mem:snap1"
    chk.ok("v3_save", "/dev/v3-vm0", "DEBUG", "x")
    assert "Checkpoint DEBUG store: 134217728 bytes of memory, 1 cores" in chk.kmsg()
    chk.ok("v3_save", "/dev/v3-vm0", "NOSUCH", "x")
    assert "Cannot find checkpoint store (NOSUCH)" in chk.kmsg()
