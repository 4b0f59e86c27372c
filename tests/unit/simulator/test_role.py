"""The simulator role, run by ansible-playbook against localhost with temp roots.

Runs that do not depend on each other run concurrently to keep the suite fast:
phase 1 -- check mode on a fresh root | apply on root B | apply on root C;
phase 2 -- apply B again (must change nothing) | check B again (nothing) |
           check B with other options (must fail, change nothing) | apply C with other
           options and reload_on_change (must reload).
"""
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from conftest import Host

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
PLAY = """- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: v3vee.palacios.simulator
"""

pytestmark = pytest.mark.skipif(not os.path.exists(ANSIBLE_PLAYBOOK), reason="ansible-playbook not installed")


def collections_path():
    """The ansible_collections root that tests/conftest.py put on sys.path."""
    return next(p for p in sys.path if os.path.isdir(os.path.join(p, "ansible_collections", "v3vee", "palacios")))


def start(tmp_path, name, extra=None, check=False):
    """Start ansible-playbook for root ``tmp_path/name``; returns (Popen, vars)."""
    work = tmp_path / name
    work.mkdir(exist_ok=True)
    variables = {"simulator_root": str(work / "sim"), "simulator_python": sys.executable,
                 "simulator_host_conf_path": str(work / "etc" / "v3vee" / "host.conf"),
                 "simulator_profile_path": str(work / "profile.d" / "v3vee.sh"),
                 "simulator_inventory_path": str(work / "inventory.db"),
                 "simulator_reserve_mb": 256, "simulator_options": "mem_block_size=4194304",
                 "ansible_python_interpreter": sys.executable}
    variables.update(extra or {})
    (work / "play.yml").write_text(PLAY)
    tag = "check" if check else "apply"
    vars_file = work / ("vars-%s-%d.json" % (tag, len(list(work.glob("vars-*")))))
    vars_file.write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(),
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               ANSIBLE_PIPELINING="True", ANSIBLE_NOCOLOR="1")
    argv = [ANSIBLE_PLAYBOOK, "-i", "localhost,", str(work / "play.yml"), "-e", "@" + str(vars_file)]
    if check:
        argv.append("--check")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(work))
    return proc, variables


def finish(run):
    """Wait for a run: (recap counters, [failure lines], vars, stderr)."""
    proc, variables = run
    out, err = proc.communicate(timeout=300)
    text = out.decode()
    recap = re.search(r"^localhost\s+:\s+(.*)$", text, re.M)
    assert recap, text + err.decode()
    stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}
    failures = [line for line in text.splitlines() if line.startswith("fatal:")]
    return stats, failures, variables, err


def test_role_check_apply_idempotence_and_reload(tmp_path):
    fresh = start(tmp_path, "a", {"simulator_profile": False, "simulator_host_conf_path": ""}, check=True)
    apply_b = start(tmp_path, "b")
    stats, failures, variables = finish(fresh)[:3]
    # directory, program, load, v3_mem (one looped task), guests: reported, none done
    assert failures == [] and stats["changed"] == 5
    assert sorted(os.listdir(str(tmp_path / "a"))) == ["play.yml", "vars-check-0.json"]
    stats, failures, variables = finish(apply_b)[:3]
    assert failures == [] and stats["changed"] >= 10

    root = variables["simulator_root"]
    host = Host(root)
    st = host.status()
    assert st["loaded"] and st["module"]["options"] == "mem_block_size=4194304"
    assert st["reserved_bytes"] == 256 << 20 and st["offline_blocks"] == [1, 2]
    assert st["boot"] == {"load": True, "cpu_list": None, "allow_devmem": None, "options": "mem_block_size=4194304"}
    with open(variables["simulator_host_conf_path"]) as fh:
        assert fh.read().splitlines()[2:] == [
            "V3VEE_BACKEND=simulator", "V3VEE_TOOLS_DIR=%s/bin" % root, "V3VEE_PROC_DIR=%s/proc/v3vee" % root,
            "V3VEE_DEV_DIR=%s/dev" % root, "PALACIOS_DIR=%s" % root, "V3VEE_KERNEL_LOG=%s/kmsg.log" % root,
            "V3VEE_SYS_DIR=%s/sys" % root, "V3VEE_INVENTORY_PATH=%s" % variables["simulator_inventory_path"]]
    profile = subprocess.run(["/bin/sh", "-c", '. "$1"; echo "$PALACIOS_DIR"; echo "$PATH"', "sh",
                              variables["simulator_profile_path"]], stdout=subprocess.PIPE, check=True,
                             env={"PATH": "/usr/bin:/bin"}).stdout.decode().splitlines()
    assert profile == [root, root + "/bin:/usr/bin:/bin"]
    assert sorted(os.listdir(root + "/guests")) == ["bios-only.xml", "disk.img", "with-disk.xml"]
    assert stat.S_IMODE(os.stat(root + "/boot.d/50-v3vee-reserve").st_mode) == 0o755
    with open(root + "/lib/v3sim.py", "rb") as fh:
        assert fh.readline() == b"#!" + os.fsencode(sys.executable) + b"\n"

    # a simulated reboot loads the module and reserves the memory again
    host.ok("v3sim", "reboot")
    st = host.status()
    assert st["loaded"] and st["reserved_bytes"] == 256 << 20 and st["boot_count"] == 2

    again = start(tmp_path, "b")
    check_same = start(tmp_path, "b", check=True)
    check_other = start(tmp_path, "b", {"simulator_options": "mem_block_size=8388608"}, check=True)
    stats, failures = finish(again)[:2]
    assert failures == [] and stats["changed"] == 0
    stats, failures = finish(check_same)[:2]
    assert failures == [] and stats["changed"] == 0
    stats, failures = finish(check_other)[:2]
    assert stats["failed"] == 1
    assert "set simulator_reload_on_change=true to do so" in failures[0]
    assert host.status()["module"]["options"] == "mem_block_size=4194304"

    host.create("doomed")
    reload_vars = {"simulator_options": "", "simulator_reload_on_change": True, "simulator_features": ["checkpoint"]}
    stats, failures = finish(start(tmp_path, "b", reload_vars))[:2]
    assert failures == [] and stats["changed"] >= 6
    st = host.status()
    assert st["module"]["runtime_block_size"] == 134217728 and st["host"]["features"] == ["checkpoint"]
    assert st["vms"] == [] and st["reserved_bytes"] == 256 << 20
    # the free pool was released before rmmod; the doomed VM's pool stayed offline (leaked)
    assert st["offline_blocks"] == [1, 2, 3]
