"""launch / pause / continue / stop / free / reset: kernel rules and the tools' (lying) exits."""
import os
import re
import time

from conftest import from_template, guest_xml

USAGE_TAIL = "\n\nThe V3Vee Project (c) 2012\n\thttp://v3vee.org\n\n\n"


def state(host, slot=0):
    return host.guests()[slot][2]


def vcore_line(host, slot=0):
    lines = [l for l in host.read("v3-guests-details").splitlines() if l.startswith("   vcore 0 ")]
    return lines[slot]


def test_launch_pause_continue_stop_and_relaunch_resumes(ready):
    ready.create("vm1")
    res = ready.run("v3_launch", "/dev/v3-vm0")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"Launching VM (/dev/v3-vm0)\n", b"")
    assert state(ready) == "running"
    assert re.fullmatch(r"   vcore 0 running on pcore 0 \d+ exits rip=0x[0-9a-f]{16} real physical shadow ",
                        vcore_line(ready))
    res = ready.run("v3_pause", "/dev/v3-vm0")
    assert (res.returncode, res.stdout) == (0, b"Pausing VM\n")
    assert state(ready) == "paused"
    res = ready.run("v3_continue", "/dev/v3-vm0")
    assert (res.returncode, res.stdout) == (0, b"Continuing VM\n")
    assert state(ready) == "running"
    res = ready.run("v3_stop", "/dev/v3-vm0")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"Stopping VM (/dev/v3-vm0)\n", b"")
    assert state(ready) == "stopped"
    stopped = vcore_line(ready)
    assert re.fullmatch(r"   vcore 0 stopped on pcore 0 \d+ exits rip=0x[0-9a-f]{16} real physical shadow ", stopped)
    time.sleep(0.05)
    ready.ok("v3_continue", "/dev/v3-vm0")            # refused, but the proc files are rewritten
    assert vcore_line(ready) == stopped                 # exits and rip frozen while stopped
    # Observed on real Palacios: relaunching a VM stopped after running resumes it.
    assert ready.run("v3_launch", "/dev/v3-vm0").returncode == 0
    assert state(ready) == "running"
    exits_then = int(stopped.split()[6])
    assert int(vcore_line(ready).split()[6]) >= exits_then


def test_fresh_vm_details_are_exactly_as_observed(ready):
    ready.create("vm1")
    assert ready.read("v3-guests-details") == (
        "-" * 87 + "\n"
        "Entry:        0\n"
        "Name:         vm1\n"
        "Device:       /dev/v3-vm0\n"
        "Type:         general\n"
        "State:        stopped\n"
        "Cores:        1 (1 shown)\n"
        "Regions:      1 (1 shown)\n"
        "Memsize:      134217728 (134217728 ROS)\n"
        "\n"
        "Core States\n"
        "   vcore 0 stopped on pcore 0 0 exits rip=0x000000000000fff0 real physical shadow \n"
        "\n"
        "Memory Regions\n"
        "   region 0 has HPAs 0x0000000010000000-0x0000000018000000 (node 0) GPA 0x0000000000000000  \n"
        + "-" * 87 + "\n")


def test_launch_always_exits_0(ready):
    ready.create("vm1")
    ready.ok("v3_launch", "/dev/v3-vm0")
    res = ready.run("v3_launch", "/dev/v3-vm0")          # already running
    assert (res.returncode, res.stdout) == (0, b"Launching VM (/dev/v3-vm0)\n")
    assert res.stderr == b"IOCTL error on device /dev/v3-vm0 (-1)\nError launching VM (/dev/v3-vm0)\n"
    assert "palacios (pcore 0 vm vm1): VM has already been launched (state=1)" in ready.kmsg()
    ready.ok("v3_pause", "/dev/v3-vm0")
    assert ready.run("v3_launch", "/dev/v3-vm0").returncode == 0
    assert "VM has already been launched (state=3)" in ready.kmsg()
    res = ready.run("v3_launch", "/dev/v3-vm7")           # no such device
    assert res.returncode == 0
    assert res.stderr == b"Error opening V3Vee VM device: /dev/v3-vm7\nError launching VM (/dev/v3-vm7)\n"
    res = ready.run("v3_launch")
    assert res.returncode == 0
    assert res.stdout.decode() == "\nUsage: %s <vm-device>\n" % os.path.join(ready.bin, "v3_launch") + USAGE_TAIL


def test_stop_of_paused_vm_is_a_silent_noop(ready):
    ready.create("vm1")
    ready.ok("v3_launch", "/dev/v3-vm0")
    ready.ok("v3_pause", "/dev/v3-vm0")
    res = ready.run("v3_stop", "/dev/v3-vm0")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"Stopping VM (/dev/v3-vm0)\n", b"")
    assert state(ready) == "paused"
    assert "palacios (pcore 0 vm vm1): Tried to stop VM in invalid runstate (3)" in ready.kmsg()


def test_stop_pause_continue_refused_by_kernel_still_exit_0(ready):
    ready.create("vm1")
    assert ready.run("v3_stop", "/dev/v3-vm0").returncode == 0
    assert "Tried to stop VM in invalid runstate (2)" in ready.kmsg()
    assert ready.run("v3_pause", "/dev/v3-vm0").returncode == 0
    assert "palacios (pcore 0 vm vm1): Tried to pause a VM that was not running" in ready.kmsg()
    assert ready.run("v3_continue", "/dev/v3-vm0").returncode == 0
    assert "palacios (pcore 0 vm vm1): Tried to continue a VM that was not paused" in ready.kmsg()
    assert state(ready) == "stopped"


def test_missing_devices_and_usage_of_stop_pause_continue(ready):
    res = ready.run("v3_stop", "/dev/v3-vm7")
    assert (res.returncode, res.stdout) == (255, b"Stopping VM (/dev/v3-vm7)\n")
    assert res.stderr == b"Error opening V3Vee VM device: /dev/v3-vm7\nError stopping VM (/dev/v3-vm7)\n"
    res = ready.run("v3_pause", "/dev/v3-vm7")
    assert (res.returncode, res.stdout, res.stderr) == (255, b"Pausing VM\nError opening V3Vee VM device\n", b"")
    res = ready.run("v3_continue", "/dev/v3-vm7")
    assert (res.returncode, res.stdout) == (255, b"Continuing VM\nError opening V3Vee VM device\n")
    res = ready.run("v3_pause")
    assert (res.returncode, res.stdout) == (255, b"usage: v3_pause <vm_device>\n")
    res = ready.run("v3_continue")
    assert (res.returncode, res.stdout) == (255, b"usage: v3_continue <vm_device>\n")
    res = ready.run("v3_stop")
    assert res.returncode == 0
    assert res.stdout.decode() == "\nUsage: %s <vm-device>\n" % os.path.join(ready.bin, "v3_stop") + USAGE_TAIL


def test_vm_ioctl_on_control_device_or_plain_file(ready, tmp_path):
    plain = tmp_path / "v3-vm0"
    plain.write_text("")
    res = ready.run("v3_stop", str(plain))
    assert res.returncode == 255
    assert res.stderr.decode() == "IOCTL error on device %s (-1)\nError stopping VM (%s)\n" % (plain, plain)
    res = ready.run("v3_launch", "/dev/v3vee")
    assert res.stderr == b"IOCTL error on device /dev/v3vee (-1)\nError launching VM (/dev/v3vee)\n"


def test_device_paths_under_root_and_relative_work(ready):
    ready.create("vm1")
    ready.ok("v3_launch", os.path.join(ready.dev, "v3-vm0"))
    assert state(ready) == "running"
    ready.ok("v3_stop", "v3-vm0", cwd=ready.dev)
    assert state(ready) == "stopped"


def test_free_rules_and_messages(ready):
    ready.create("vm1")
    ready.ok("v3_launch", "/dev/v3-vm0")
    res = ready.run("v3_free", "0")
    assert (res.returncode, res.stdout) == (255, b"Freeing VM 0\n")
    assert res.stderr == b"IOCTL error on V3Vee control device (-1)\nError freeing VM 0 (0)\n"
    assert "palacios (pcore 0 vm vm1): Tried to Free VM in invalid runstate (1)" in ready.kmsg()
    assert "palacios (pcore 0): Cannot free guest at index 0" in ready.kmsg()
    ready.ok("v3_pause", "/dev/v3-vm0")
    assert ready.run("v3_free", "/dev/v3-vm0").returncode == 255
    ready.ok("v3_continue", "/dev/v3-vm0")
    ready.ok("v3_stop", "/dev/v3-vm0")
    res = ready.run("v3_free", "/dev/v3-vm0")
    assert (res.returncode, res.stdout, res.stderr) == (0, b"Freeing VM 0\n", b"")
    assert ready.read("v3-guests") == ""
    assert not os.path.exists(os.path.join(ready.dev, "v3-vm0"))
    # memory went back to the pools
    assert "free=134217728" in ready.read("v3-mem0").splitlines()[-2]
    assert "free=134217728" in ready.read("v3-mem0").splitlines()[-3]


def test_free_parses_like_strtol_base0(ready):
    cases = [("010", 8), ("0x1f", 31), ("foo", 0), ("/tmp/v3-vm-x", 0), ("/dev/v3-vm3", 3), ("v3-vm012", 10),
             ("  7x", 7), ("-1", 18446744073709551615)]
    for arg, idx in cases:
        res = ready.run("v3_free", arg)
        assert res.stdout.decode() == "Freeing VM %d\n" % idx, arg
        assert res.returncode == 255
        assert res.stderr.decode().endswith("Error freeing VM %d (%s)\n" % (idx, arg))
    log = ready.kmsg()
    assert "No VM at index 8" in log and "No VM at index 31" in log and "Invalid VM index: -1" in log
    ready.create("vm1")
    ready.ok("v3_free", "foo")                   # non-numeric text frees VM 0 [BUG]
    assert ready.read("v3-guests") == ""
    res = ready.run("v3_free")
    assert res.returncode == 0 and res.stdout.decode().startswith("\nUsage: ")


def test_error_state_can_be_freed_but_not_stopped_or_launched(ready):
    ready.create("vm1")
    ready.ok("v3_launch", "/dev/v3-vm0")
    ready.ok("v3sim", "vm-error", "0")
    assert state(ready) == "ERROR"
    assert ready.read("v3-guests-details").count("State:        ERROR") == 1
    ready.ok("v3_stop", "/dev/v3-vm0")
    assert "Tried to stop VM in invalid runstate (4)" in ready.kmsg()
    ready.ok("v3_launch", "/dev/v3-vm0")
    assert "VM has already been launched (state=4)" in ready.kmsg()
    ready.ok("v3_free", "0")
    assert ready.read("v3-guests") == ""


def test_multi_vcore_mapping_and_cpu_list(templates, tmp_path):
    host = from_template(templates, tmp_path, "fresh")
    host.load("--cpu-list", "1,2")
    host.reserve(1)
    host.create("two", guest_xml(tmp_path, "two", 128, cores=2))
    host.ok("v3_launch", "/dev/v3-vm0")
    lines = [l for l in host.read("v3-guests-details").splitlines() if l.startswith("   vcore")]
    assert lines[0].startswith("   vcore 0 running on pcore 2 ")   # highest vcore takes the first CPU
    assert lines[1].startswith("   vcore 1 running on pcore 1 ")
    host.ok("v3_stop", "/dev/v3-vm0")
    host.ok("v3_free", "0")
    host.create("three", guest_xml(tmp_path, "three", 1, cores=3))
    host.ok("v3_launch", "/dev/v3-vm0")
    assert state(host) == "stopped"
    assert "Attempted to start a VM with too many cores (vm->num_cores = 3, avail_cores = 2" in host.kmsg()


def test_reset_is_refused_unless_running_and_hrt_ros_are_refused(ready):
    ready.create("vm1")
    res = ready.run("v3_reset", "/dev/v3-vm0", "all")
    assert (res.returncode, res.stdout) == (255, b"Doing VM reset:  ALL \nError sending reset commad to vm\n")
    assert "Attempt to reset VM in state 2 (must be in running state)" in ready.kmsg()
    ready.ok("v3_launch", "/dev/v3-vm0")
    ready.ok("v3_pause", "/dev/v3-vm0")
    res = ready.run("v3_reset", "/dev/v3-vm0", "all")
    assert res.returncode == 255
    assert "Attempt to reset VM in state 3 (must be in running state)" in ready.kmsg()
    ready.ok("v3_continue", "/dev/v3-vm0")
    for kind in ("hrt", "ros"):
        res = ready.run("v3_reset", "/dev/v3-vm0", kind)
        assert (res.returncode, res.stdout) == (255, b"Doing VM reset:  %s \nError sending reset commad to vm\n"
                                                % kind.upper().encode())
    assert state(ready) == "running"
    res = ready.run("v3_reset", "/dev/v3-vm0", "range", "0")
    assert res.returncode == 255
    assert res.stdout.decode().startswith("usage: v3_reset <vm_device> all|hrt|ros|range [first_core num_cores]\n\n"
                                          "Resets the VM or a part of it.\n")
    assert res.stdout.decode().endswith("  range : reset of cores first_core to first_core+num_cores-1\n\n")
    res = ready.run("v3_reset", "/dev/v3-vm9", "all")
    assert (res.returncode, res.stdout) == (255, b"Doing VM reset:  ALL \nError opening VM device: /dev/v3-vm9\n")


def test_reset_shows_unknown_then_running_from_the_reset_vector(ready):
    """Observed item 17: exit 0 at once, UNKNOWN (details: resetting) for a while, then running
    with rip back at 0xfff0; exit counts are not reset. The window is stretched to 2 s here so
    the check cannot race it; the default is the observed 150 ms."""
    ready.create("vm1")
    ready.ok("v3_launch", "/dev/v3-vm0")
    time.sleep(0.05)
    exits_before = int(vcore_line(ready).split()[6])
    start = time.time()
    res = ready.run("v3_reset", "/dev/v3-vm0", "ALL", env={"V3VEE_SIM_RESET_SECONDS": "2"})
    assert (res.returncode, res.stdout, res.stderr) == (0, b"Doing VM reset:  ALL \n", b"")
    assert time.time() - start < 2                      # the tool does not wait for the reset
    assert state(ready) == "UNKNOWN"
    assert "State:        resetting\n" in ready.read("v3-guests-details")
    assert re.fullmatch(r"   vcore 0 resetting on pcore 0 (\d+) exits rip=0x000000000000fff0 real physical shadow ",
                        vcore_line(ready))
    assert int(vcore_line(ready).split()[6]) >= exits_before
    res = ready.run("v3_stop", "/dev/v3-vm0")            # refused while resetting (state 6)
    assert "Tried to stop VM in invalid runstate (6)" in ready.kmsg()
    deadline = time.time() + 10
    while state(ready) == "UNKNOWN" and time.time() < deadline:
        time.sleep(0.05)
    assert state(ready) == "running"
    assert time.time() - start >= 2
    line = vcore_line(ready)
    assert line.startswith("   vcore 0 running ") and int(line.split()[6]) >= exits_before


def test_reset_takes_about_150_ms_by_default_and_range_is_not_bounds_checked(ready):
    ready.create("vm1")
    ready.ok("v3_launch", "/dev/v3-vm0")
    res = ready.run("v3_reset", "/dev/v3-vm0", "range", "0", "9")
    assert (res.returncode, res.stdout) == (0, b"Doing VM reset:  RANGE cores 0 to 8\n")
    deadline = time.time() + 10
    while state(ready) == "UNKNOWN" and time.time() < deadline:
        time.sleep(0.02)
    assert state(ready) == "running"


def test_stderr_comes_before_buffered_stdout_in_a_merged_pipe(ready):
    import subprocess
    res = subprocess.run([os.path.join(ready.bin, "v3_free"), "3"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=ready.env, check=False)
    assert res.stdout == (b"IOCTL error on V3Vee control device (-1)\nError freeing VM 3 (3)\nFreeing VM 3\n")
