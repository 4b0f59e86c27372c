"""Simulator-only controls: install, status, host, boot/reboot, load parameters, faults."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import BIOS_XML, TOOLS, V3SIM, install


def test_install_layout_and_idempotence(tmp_path):
    root = tmp_path / "r"
    out = subprocess.run([sys.executable, V3SIM, "install", "--root", str(root), "--json"],
                         stdout=subprocess.PIPE, check=True).stdout
    assert json.loads(out)["changed"] is True
    for tool in TOOLS + ("v3sim",):
        link = root / "bin" / tool
        assert os.readlink(str(link)) == "../lib/v3sim.py", tool
    assert stat.S_IMODE(os.stat(str(root / "lib" / "v3sim.py")).st_mode) == 0o755
    for name in ("host.json", "kernel.json", "faults.json"):
        assert (root / "state" / name).exists()
    again = subprocess.run([str(root / "bin" / "v3sim"), "install", "--root", str(root), "--json"],
                           stdout=subprocess.PIPE, check=True).stdout
    assert json.loads(again) == {"changed": False, "paths": [], "root": str(root)}
    check = subprocess.run([sys.executable, V3SIM, "install", "--root", str(root), "--python", "/x/py",
                            "--check", "--json"], stdout=subprocess.PIPE, check=True).stdout
    assert json.loads(check)["changed"] is True
    with open(str(root / "lib" / "v3sim.py"), "rb") as fh:
        # the interpreter that ran the install, and --check changed nothing
        assert fh.readline() == b"#!" + os.fsencode(sys.executable) + b"\n"


def test_root_comes_from_argv0_without_resolving_symlinks_or_from_env(tmp_path):
    a = install(tmp_path / "a")
    b = install(tmp_path / "b")
    # b/bin/v3sim is a symlink into b/lib; a link elsewhere pointing at a's program still
    # acts on the root above *its own* directory.
    other = tmp_path / "c" / "bin"
    other.mkdir(parents=True)
    os.symlink(os.path.join(a.root, "lib", "v3sim.py"), str(other / "v3sim"))
    out = subprocess.run([str(other / "v3sim"), "status", "--json"], stdout=subprocess.PIPE, check=True,
                         env=dict(a.env)).stdout
    assert json.loads(out)["root"] == str(tmp_path / "c")
    out = subprocess.run([os.path.join(a.bin, "v3sim"), "status", "--json"], stdout=subprocess.PIPE,
                         check=True, env=dict(a.env, V3VEE_SIM_ROOT=b.root)).stdout
    assert json.loads(out)["root"] == b.root


def test_unknown_program_name(host, tmp_path):
    link = tmp_path / "v3_console"
    os.symlink(os.path.join(host.root, "lib", "v3sim.py"), str(link))
    res = subprocess.run([str(link)], stderr=subprocess.PIPE, check=False, env=host.env)
    assert res.returncode == 2
    assert res.stderr.startswith(b"v3sim: do not know how to behave as 'v3_console'")


def test_status_json_reports_everything(ready):
    ready.create("vm1")
    ready.ok("v3sim", "fault", "add", "v3_stop", "hang", "--seconds", "1", "--count", "2")
    st = ready.status()
    assert st["loaded"] is True
    assert st["host"] == {"cpus": 4, "nodes": 1, "memory_mb": 4096, "compiled_block_size": 134217728,
                          "features": [], "migration_stream": "broken"}
    assert st["module"]["runtime_block_size"] == 134217728
    assert st["vms"] == [{"slot": 0, "name": "vm1", "device": "/dev/v3-vm0", "state": "stopped", "vcores": 1,
                          "mem_bytes": 134217728, "regions": 1, "restored_from": None}]
    assert st["reserved_bytes"] == 2 * 134217728 and st["reserved_free_bytes"] == 134217728
    assert st["offline_blocks"] == [1, 2]
    assert st["faults"] == {"v3_stop": [{"count": 2, "kind": "hang", "seconds": 1.0}]}
    text = ready.ok("v3sim", "status")
    assert "vm:       /dev/v3-vm0 vm1 stopped 1 vcores 134217728 bytes\n" in text


def test_host_changes_refused_while_loaded(loaded):
    res = loaded.run("v3sim", "host", "--cpus", "8")
    assert res.returncode == 1
    assert res.stderr == (b"v3sim: cannot change the simulated host while the v3vee module is loaded "
                          b"(run 'v3sim unload' first)\n")
    same = loaded.run("v3sim", "host", "--cpus", "4", "--json")
    assert json.loads(same.stdout)["changed"] is False
    loaded.ok("v3sim", "unload")
    out = json.loads(loaded.ok("v3sim", "host", "--cpus", "8", "--features", "migration,checkpoint", "--json"))
    assert out["changed"] is True and out["host"]["features"] == ["checkpoint", "migration"]
    res = loaded.run("v3sim", "host", "--features", "migration")
    assert res.returncode == 2 and b"needs 'checkpoint'" in res.stderr
    res = loaded.run("v3sim", "host", "--compiled-block-size", "100000000")
    assert res.returncode == 2 and b"power of two" in res.stderr


def test_compiled_block_size_sets_the_zone_max_order(host):
    host.ok("v3sim", "host", "--compiled-block-size", str(256 << 20))
    host.load()
    assert "  Zone Max Order=28, Min Order=12\n" in host.read("v3-mem0")
    res = host.run("v3_mem", "-a", "256")
    assert res.returncode == 0
    assert res.stdout.startswith(b"Memory of size 268435456 at 0x8000000 has been offlined\n")


def test_invalid_module_parameters(host):
    res = host.run("v3sim", "load", "--cpu-list", "0,x")
    assert (res.returncode, res.stderr) == (1, b"insmod: ERROR: could not insert module v3vee.ko: "
                                               b"Invalid parameters\n")
    assert "v3vee: `0,x' invalid for parameter `cpu_list'" in host.kmsg()
    assert not os.path.exists(host.proc)
    host.ok("v3sim", "load", "--cpu-list", "1,9", "--allow-devmem", "1")
    st = host.status()["module"]
    assert (st["cpus"], st["allow_devmem"], st["cpu_list"]) == ([1], "1", "1,9")
    assert "CPU 9 in cpu_list is not online, ignoring it" in host.kmsg()


def test_reboot_forgets_kernel_state_keeps_files_and_runs_boot_config(ready):
    ready.create("vm1")
    ready.ok("v3sim", "boot", "--load", "--options", "mem_block_size=4194304")
    script = os.path.join(ready.root, "boot.d", "50-reserve")
    with open(script, "w") as fh:
        fh.write('#!/bin/sh\nPALACIOS_DIR="$V3VEE_SIM_ROOT" v3_mem -a 128 > "$V3VEE_SIM_ROOT/boot.out"\n')
    os.chmod(script, 0o755)
    with open(os.path.join(ready.root, "boot.d", "10-disabled"), "w") as fh:
        fh.write("#!/bin/sh\nexit 3\n")                      # not executable: skipped
    ready.ok("v3sim", "reboot")
    st = ready.status()
    assert st["loaded"] and st["module"]["runtime_block_size"] == 4194304
    assert st["vms"] == [] and st["boot_count"] == 2
    # hot-removed memory came back online at reboot; the boot script reserved block 1 again
    assert st["offline_blocks"] == [1]
    with open(os.path.join(ready.root, "boot.out")) as fh:
        assert fh.read().startswith("Memory of size 134217728 at 0x8000000 has been offlined\n")
    # .v3offlinedmem is a file in PALACIOS_DIR: untouched by the reboot, appended by the script
    assert ready.offlined() == "8000000\t8000000\n10000000\t8000000\n8000000\t8000000\n"
    assert "v3sim: simulated host booted (boot 2)" in ready.kmsg()
    ready.ok("v3sim", "boot", "--no-load")
    ready.ok("v3sim", "reboot")
    assert ready.status()["loaded"] is False


def test_crash_fault_kills_the_tool_before_any_change(ready):
    ready.ok("v3sim", "fault", "add", "v3_create", "crash")
    res = ready.run("v3_create", "-b", BIOS_XML, "vm1")
    assert (res.returncode, res.stdout, res.stderr) == (-signal.SIGSEGV, b"", b"")
    assert ready.read("v3-guests") == ""
    assert ready.status()["faults"] == {}
    assert ready.create("vm1") == 0


def test_refuse_fault_on_stop_exits_0_with_no_change(ready):
    ready.create("vm1")
    ready.ok("v3_launch", "/dev/v3-vm0")
    ready.ok("v3sim", "fault", "add", "v3_stop", "refuse", "--count", "2")
    for _attempt in range(2):
        res = ready.run("v3_stop", "/dev/v3-vm0")
        assert (res.returncode, res.stdout, res.stderr) == (0, b"Stopping VM (/dev/v3-vm0)\n", b"")
        assert ready.guests()[0][2] == "running"
    ready.ok("v3_stop", "/dev/v3-vm0")
    assert ready.guests()[0][2] == "stopped"


def test_refuse_fault_on_launch_and_free(ready):
    ready.create("vm1")
    ready.ok("v3sim", "fault", "add", "v3_launch", "refuse")
    res = ready.run("v3_launch", "/dev/v3-vm0")
    assert res.returncode == 0 and res.stderr.endswith(b"Error launching VM (/dev/v3-vm0)\n")
    assert ready.guests()[0][2] == "stopped"
    ready.ok("v3sim", "fault", "add", "v3_free", "refuse")
    assert ready.run("v3_free", "0").returncode == 255
    ready.ok("v3_free", "0")


def test_hang_fault_does_not_hold_the_lock(ready):
    ready.ok("v3sim", "fault", "add", "v3_launch", "hang", "--seconds", "1.5")
    ready.create("vm1")
    start = time.time()
    slow = subprocess.Popen([os.path.join(ready.bin, "v3_launch"), "/dev/v3-vm0"], env=ready.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    assert ready.create("vm2") == 1                       # other tools proceed meanwhile
    assert time.time() - start < 1.4
    out, _err = slow.communicate(timeout=10)
    assert slow.returncode == 0 and out == b"Launching VM (/dev/v3-vm0)\n"
    assert time.time() - start >= 1.5
    assert ready.guests()[0][2] == "running"


def test_fault_usage_and_clear(host):
    res = host.run("v3sim", "fault", "add", "v3_console", "crash")
    assert res.returncode == 2
    host.ok("v3sim", "fault", "add", "v3_free", "crash", "--count", "3")
    host.ok("v3sim", "fault", "add", "v3_stop", "refuse")
    assert host.ok("v3sim", "fault", "list") == "v3_free crash count=3 seconds=0\nv3_stop refuse count=1 seconds=0\n"
    host.ok("v3sim", "fault", "clear", "v3_free")
    assert json.loads(host.ok("v3sim", "fault", "list", "--json")) == {
        "v3_stop": [{"count": 1, "kind": "refuse", "seconds": 0.0}]}
    host.ok("v3sim", "fault", "clear")
    assert host.ok("v3sim", "fault", "list") == ""


def test_dmesg_prints_the_kernel_log_in_dmesg_style(loaded):
    out = loaded.ok("v3sim", "dmesg")
    lines = out.splitlines()
    assert lines[0].endswith("] Zone initialized, Adding seed region (order=22)")
    assert lines[1][0] == "[" and lines[1][13:] == "] palacios (pcore 0): intializing V3 Control device"
    assert out == loaded.kmsg()


def test_help(host):
    res = host.run("v3sim")
    assert res.returncode == 2 and res.stdout.startswith(b"usage: v3sim <command> [options]\n")


def test_status_and_check_modes_create_nothing(tmp_path):
    host = install(tmp_path / "r")
    bare = tmp_path / "bare"
    (bare / "lib").mkdir(parents=True)
    os.symlink(os.path.join(host.root, "lib", "v3sim.py"), str(bare / "lib" / "v3sim.py"))
    out = subprocess.run([str(bare / "lib" / "v3sim.py"), "status", "--json"], stdout=subprocess.PIPE,
                         check=True, env=host.env).stdout
    assert json.loads(out)["loaded"] is False
    out = subprocess.run([str(bare / "lib" / "v3sim.py"), "host", "--cpus", "2", "--check", "--json"],
                         stdout=subprocess.PIPE, check=True, env=host.env).stdout
    assert json.loads(out)["changed"] is True
    assert os.listdir(str(bare)) == ["lib"]


def test_every_tool_run_is_logged_with_its_argv(loaded):
    loaded.run("v3_mem", "-a", "128")
    loaded.run("v3_mem_reset", "-f")
    loaded.run("v3_free", "7")
    loaded.ok("v3sim", "status")                       # controls are not tools: not logged
    with open(os.path.join(loaded.root, "tools.log")) as fh:
        assert [json.loads(line) for line in fh] == [["v3_mem", "-a", "128"], ["v3_mem_reset", "-f"], ["v3_free", "7"]]


def _hang(ready, *flags):
    """Start `v3_launch /dev/v3-vm0` under a 30 s hang fault; returns the process once it hangs."""
    ready.create("vm1")
    ready.ok("v3sim", "fault", "add", "v3_launch", "hang", "--seconds", "30", *flags)
    proc = subprocess.Popen([os.path.join(ready.bin, "v3_launch"), "/dev/v3-vm0"], env=ready.env, cwd=ready.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while ready.status()["faults"] and time.time() < deadline:   # consumed when the tool starts
        time.sleep(0.05)
    time.sleep(0.3)                                               # past installing its signal handling
    return proc


def test_a_tool_killed_during_a_hang_fault_has_changed_nothing(ready):
    proc = _hang(ready)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM
    assert [(e["name"], e["state"]) for e in ready.status()["vms"]] == [("vm1", "stopped")]


def test_a_hang_fault_with_ignore_sigterm_survives_sigterm_and_dies_by_sigkill(ready):
    ready.ok("v3sim", "fault", "add", "v3_stop", "hang", "--ignore-sigterm", "--seconds", "1")
    assert ready.ok("v3sim", "fault", "list") == "v3_stop hang count=1 seconds=1 ignore-sigterm\n"
    ready.ok("v3sim", "fault", "clear")
    proc = _hang(ready, "--ignore-sigterm")
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert [(e["name"], e["state"]) for e in ready.status()["vms"]] == [("vm1", "stopped")]


def test_ignore_sigterm_only_goes_with_a_hang_fault(host):
    res = host.run("v3sim", "fault", "add", "v3_stop", "refuse", "--ignore-sigterm")
    assert res.returncode == 2 and b"--ignore-sigterm goes with a hang fault" in res.stderr
