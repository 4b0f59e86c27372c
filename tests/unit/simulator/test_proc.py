"""/proc/v3vee and /dev: exact layouts, module load/unload lifecycle."""
import os
import stat

from conftest import from_template, guest_xml

SEED = "    Base Addr=000000007f400000, order=22, size=4194304, free=4161536\n"


def mem_dump(free_counts, pools, max_order=27):
    lines = ["DUMP OF BUDDY MEMORY ZONE:\n", "  Zone Max Order=%d, Min Order=12\n" % max_order]
    lines += ["  order %2d: %d free blocks\n" % (o, free_counts.get(o, 0)) for o in range(12, max_order + 1)]
    lines.append(" %d memory pools\n" % len(pools))
    return "".join(lines + pools)


def test_proc_and_dev_exist_only_while_loaded(host):
    assert not os.path.exists(host.proc)
    assert not os.path.exists(os.path.join(host.dev, "v3vee"))
    res = host.run("v3sim", "load")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"")
    assert sorted(os.listdir(host.proc)) == ["v3-guests", "v3-guests-details", "v3-info", "v3-mem0"]
    mode = os.stat(os.path.join(host.dev, "v3vee")).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert os.path.getsize(os.path.join(host.proc, "v3-guests")) == 0
    assert host.read("v3-guests-details") == ""
    res = host.run("v3sim", "load")
    assert (res.returncode, res.stderr) == (1, b"insmod: ERROR: could not insert module v3vee.ko: File exists\n")
    host.ok("v3sim", "unload")
    assert not os.path.exists(host.proc)
    assert not os.path.exists(os.path.join(host.dev, "v3vee"))
    res = host.run("v3sim", "unload")
    assert (res.returncode, res.stderr) == (1, b"rmmod: ERROR: Module v3vee is not currently loaded\n")


def test_v3_info_default_layout(loaded):
    assert loaded.read("v3-info") == (
        "kernel MAX_ORDER:\t11\n"
        "number of nodes:\t1\n"
        "number of cpus: \t4\n"
        "\n"
        "palacios compiled mem_block_size:\t134217728\n"
        "palacios run-time mem_block_size:\t134217728\n"
        "\n"
        "CPU to node mappings\n"
        "cpu 0 -> node 0\ncpu 1 -> node 0\ncpu 2 -> node 0\ncpu 3 -> node 0\n"
        "\n"
        "Node to node distances\n"
        "   \t 0\n"
        " 0 \t10\n"
        "\n"
        "CPU to CPU distances\n"
        "   \t 0   \t 1   \t 2   \t 3\n"
        " 0 \t10\t10\t10\t10\n"
        " 1 \t10\t10\t10\t10\n"
        " 2 \t10\t10\t10\t10\n"
        " 3 \t10\t10\t10\t10\n")


def test_v3_info_two_nodes_and_runtime_block_size(host):
    host.ok("v3sim", "host", "--nodes", "2", "--cpus", "2", "--memory-mb", "1024")
    host.load("--options", "mem_block_size=4194304 cpu_mapper=default")
    assert host.read("v3-info") == (
        "kernel MAX_ORDER:\t11\nnumber of nodes:\t2\nnumber of cpus: \t2\n\n"
        "palacios compiled mem_block_size:\t134217728\npalacios run-time mem_block_size:\t4194304\n\n"
        "CPU to node mappings\ncpu 0 -> node 0\ncpu 1 -> node 1\n\n"
        "Node to node distances\n   \t 0   \t 1\n 0 \t10\t20\n 1 \t20\t10\n\n"
        "CPU to CPU distances\n   \t 0   \t 1\n 0 \t10\t20\n 1 \t20\t10\n")
    assert sorted(os.listdir(host.proc)) == ["v3-guests", "v3-guests-details", "v3-info", "v3-mem0", "v3-mem1"]
    # node 0: RAM 0-1 GiB, seed 12 MiB below its top; node 1: 1-2 GiB
    assert host.read("v3-mem0").endswith(" 1 memory pools\n    Base Addr=000000003f400000, order=22, "
                                         "size=4194304, free=4161536\n")
    assert host.read("v3-mem1").endswith(" 1 memory pools\n    Base Addr=000000007f400000, order=22, "
                                         "size=4194304, free=4161536\n")


def test_unparsable_mem_block_size_shows_minus_one(host):
    host.load("--options", "mem_block_size=4M")
    assert "palacios run-time mem_block_size:\t18446744073709551615\n" in host.read("v3-info")
    res = host.run("v3_mem", "-a", "128")
    assert res.returncode == 255
    assert res.stderr.decode().startswith("Trying to add a smaller single chunk of memory than Palacios needs\n")


def test_mem_dump_after_load_and_after_reservations(loaded):
    seed_free = {o: 1 for o in range(15, 22)}
    assert loaded.read("v3-mem0") == mem_dump(seed_free, [SEED])
    loaded.reserve(2)
    pools = ["    Base Addr=0000000008000000, order=27, size=134217728, free=134217728\n",
             "    Base Addr=0000000010000000, order=27, size=134217728, free=134217728\n", SEED]
    assert loaded.read("v3-mem0") == mem_dump({**seed_free, 27: 2}, pools)
    loaded.create("vm1")
    text = loaded.read("v3-mem0")
    assert "  order 27: 1 free blocks\n" in text
    # the most recently added pool is at the head of the free list, so the VM lands there
    assert "    Base Addr=0000000010000000, order=27, size=134217728, free=0\n" in text
    assert "    Base Addr=0000000008000000, order=27, size=134217728, free=134217728\n" in text


def test_small_blocks_split_pools_buddy_style(templates, tmp_path):
    host = from_template(templates, tmp_path, "fresh")
    host.load("--options", "mem_block_size=4194304")
    host.reserve(1)
    host.create("small", guest_xml(tmp_path, "small", 6))
    assert host.guests()[0][4:6] == ["2 regions", "6291456 mem"]
    text = host.read("v3-mem0")
    assert "    Base Addr=0000000008000000, order=27, size=134217728, free=125829120\n" in text
    for order in (23, 24, 25, 26):
        assert "  order %d: 1 free blocks\n" % order in text
    regions = [l for l in host.read("v3-guests-details").splitlines() if "region" in l and "HPAs" in l]
    assert regions == [
        "   region 0 has HPAs 0x0000000008000000-0x0000000008400000 (node 0) GPA 0x0000000000000000  ",
        "   region 1 has HPAs 0x0000000008400000-0x0000000008800000 (node 0) GPA 0x0000000000400000  "]
    host.ok("v3_free", "0")
    assert "free=134217728" in host.read("v3-mem0")           # buddies coalesced again


def test_rmmod_frees_stopped_stops_running_and_leaks_paused(ready):
    for name in ("a", "b"):
        ready.create(name)
    ready.ok("v3sim", "unload")
    ready.ok("v3sim", "load")
    assert ready.read("v3-guests") == ""
    log = ready.kmsg()
    assert "palacios (pcore 0 vm a): Tried to stop VM in invalid runstate (2)" in log
    ready.reserve(1)                                      # third block: the others stay offline
    st = ready.status()
    assert st["offline_blocks"] == [1, 2, 3]
    assert ready.offlined() == "8000000\t8000000\n10000000\t8000000\n18000000\t8000000\n"
    ready.create("run")
    ready.ok("v3_launch", "/dev/v3-vm0")
    ready.ok("v3_pause", "/dev/v3-vm0")
    ready.ok("v3sim", "unload")
    assert "palacios (pcore 0 vm run): Tried to Free VM in invalid runstate (3)" in ready.kmsg()
    assert not os.listdir(ready.dev)


def test_rmmod_then_offline_memory_cannot_be_released(ready):
    ready.ok("v3sim", "unload")
    ready.ok("v3sim", "load")
    res = ready.run("v3_mem", "-r", "offline")
    assert res.returncode == 0
    assert res.stderr == b"Request rejected by Palacios\nRequest rejected by Palacios\n"
    assert ready.offlined() == "8000000\t8000000\n10000000\t8000000\n"
    assert ready.status()["offline_blocks"] == [1, 2]


def test_proc_files_are_replaced_atomically(ready):
    before = os.stat(os.path.join(ready.proc, "v3-guests")).st_ino
    ready.create("vm1")
    after = os.stat(os.path.join(ready.proc, "v3-guests")).st_ino
    assert before != after
    assert not [n for n in os.listdir(ready.proc) if n.startswith(".")]
    assert stat.S_IMODE(os.stat(os.path.join(ready.proc, "v3-guests")).st_mode) == 0o444
