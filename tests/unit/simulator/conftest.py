"""Fixtures for the v3sim tests: every test gets its own simulated host (temp root).

A host is installed with ``v3sim.py install --root DIR`` (the same path the role uses) and
the tools are run as real subprocesses through their ``DIR/bin`` symlinks, so argv[0]
dispatch, exit codes, signals and stdio buffering are exercised exactly as a caller sees
them.
"""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
V3SIM = os.path.join(REPO, "roles", "simulator", "files", "v3sim.py")
GUESTS = os.path.join(REPO, "roles", "simulator", "files", "guests")
BIOS_XML = os.path.join(GUESTS, "bios-only.xml")
MiB = 1 << 20
TOOLS = ("v3_create", "v3_free", "v3_launch", "v3_stop", "v3_pause", "v3_continue", "v3_reset", "v3_mem",
         "v3_mem_reset", "v3_save", "v3_load", "v3_send", "v3_receive", "v3_stream")


class Host:
    """A simulated Palacios host rooted at ``root``."""

    def __init__(self, root):
        self.root = str(root)
        self.bin = os.path.join(self.root, "bin")
        self.proc = os.path.join(self.root, "proc", "v3vee")
        self.dev = os.path.join(self.root, "dev")
        self.env = {k: v for k, v in os.environ.items() if k not in ("V3VEE_SIM_ROOT", "PALACIOS_DIR")}
        self.env["PATH"] = self.bin + os.pathsep + os.path.dirname(sys.executable) + os.pathsep + \
            self.env.get("PATH", "/usr/bin:/bin")
        self.env["PALACIOS_DIR"] = self.root

    def run(self, tool, *args, cwd=None, env=None, timeout=60):
        """Run ``<root>/bin/<tool> args...`` (argv list, no shell); bytes in the result."""
        full_env = dict(self.env, **(env or {}))
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key)
        return subprocess.run([os.path.join(self.bin, tool)] + [str(a) for a in args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd or self.root,
                              env=full_env, timeout=timeout, check=False)

    def ok(self, tool, *args, **kw):
        """Run and require exit status 0; returns stdout text."""
        res = self.run(tool, *args, **kw)
        assert res.returncode == 0, (tool, args, res)
        return res.stdout.decode()

    def read(self, name):
        with open(os.path.join(self.proc, name), "rb") as fh:
            return fh.read().decode()

    def kmsg(self):
        with open(os.path.join(self.root, "kmsg.log"), "rb") as fh:
            return fh.read().decode()

    def offlined(self):
        try:
            with open(os.path.join(self.root, ".v3offlinedmem")) as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def load(self, *args):
        self.ok("v3sim", "load", *args)

    def reserve(self, count=1, mb=128):
        for _chunk in range(count):
            self.ok("v3_mem", "-a", mb)

    def create(self, name="vm1", xml=BIOS_XML, *opts):
        out = self.ok("v3_create", "-b", xml, name, *opts)
        return int(out.rsplit("/dev/v3-vm", 1)[1])

    def status(self):
        import json
        return json.loads(self.ok("v3sim", "status", "--json"))

    def guests(self):
        """v3-guests as a list of field lists."""
        return [line.split("\t") for line in self.read("v3-guests").splitlines()]


def guest_xml(directory, name, memory_mb, cores=1, vm_class="PC", body=""):
    """Write a minimal guest config ``directory/name.xml``; returns its path."""
    path = os.path.join(str(directory), name + ".xml")
    with open(path, "w") as fh:
        fh.write('<vm class="%s"><memory>%d</memory>%s<cores count="%d"/></vm>' % (vm_class, memory_mb, body, cores))
    return path


def install(root):
    subprocess.run([sys.executable, V3SIM, "install", "--root", str(root), "--python", sys.executable],
                   check=True, stdout=subprocess.DEVNULL)
    return Host(root)


@pytest.fixture(scope="session")
def templates(tmp_path_factory):
    """Prepared hosts, built once per session and copied for each test (a copy of a
    root is a complete simulated host: nothing in the state refers to the path)."""
    base = tmp_path_factory.mktemp("templates")
    fresh = install(base / "fresh")
    shutil.copytree(fresh.root, str(base / "loaded"), symlinks=True)
    loaded = Host(base / "loaded")
    loaded.load()
    shutil.copytree(loaded.root, str(base / "ready"), symlinks=True)
    Host(base / "ready").reserve(2)
    return base


def from_template(templates, tmp_path, name):
    root = tmp_path / "sim"
    shutil.copytree(str(templates / name), str(root), symlinks=True)
    return Host(root)


@pytest.fixture
def host(templates, tmp_path):
    """A fresh simulated host: installed, module not loaded."""
    return from_template(templates, tmp_path, "fresh")


@pytest.fixture
def loaded(templates, tmp_path):
    """A host with the module loaded (default options) and no reserved memory."""
    return from_template(templates, tmp_path, "loaded")


@pytest.fixture
def ready(templates, tmp_path):
    """A loaded host with two 128 MiB pools reserved by hot-remove (0x8000000, 0x10000000)."""
    return from_template(templates, tmp_path, "ready")
