"""Many tool processes at once: the state lock keeps one consistent host."""
import os
import re
import subprocess

from conftest import from_template, guest_xml


def test_twenty_concurrent_creates_get_distinct_slots_and_consistent_proc(templates, tmp_path):
    host = from_template(templates, tmp_path, "fresh")
    host.load("--options", "mem_block_size=4194304")
    host.reserve(1)                                   # 32 blocks of 4 MiB
    xml = guest_xml(tmp_path, "tiny", 4)
    procs = [subprocess.Popen([os.path.join(host.bin, "v3_create"), "-b", xml, "vm%02d" % i],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=host.env)
             for i in range(20)]
    slots = {}
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, err) == (0, b""), out
        slots["vm%02d" % i] = int(re.search(rb"created at /dev/v3-vm(\d+)\n$", out).group(1))
    assert sorted(slots.values()) == list(range(20))
    guests = host.guests()
    assert [int(g[1][len("/dev/v3-vm"):]) for g in guests] == list(range(20))
    assert {g[0]: int(g[1][len("/dev/v3-vm"):]) for g in guests} == slots
    assert all(g[2:] == ["stopped", "1 vcores", "1 regions", "4194304 mem", "general"] for g in guests)
    assert host.read("v3-guests-details").count("-" * 87 + "\n") == 40
    assert "free=50331648" in host.read("v3-mem0")      # 128 MiB - 20 x 4 MiB
    assert sorted(n for n in os.listdir(host.dev) if n.startswith("v3-vm")) == \
        sorted("v3-vm%d" % i for i in range(20))
    # and concurrent launches/frees of different VMs
    procs = [subprocess.Popen([os.path.join(host.bin, "v3_launch"), "/dev/v3-vm%d" % i],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=host.env)
             for i in range(0, 20, 2)]
    procs += [subprocess.Popen([os.path.join(host.bin, "v3_free"), str(i)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=host.env)
              for i in range(1, 20, 2)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    guests = host.guests()
    assert [g[1] for g in guests] == ["/dev/v3-vm%d" % i for i in range(0, 20, 2)]
    assert {g[2] for g in guests} == {"running"}
    assert "free=92274688" in host.read("v3-mem0")      # 10 VMs left
