"""Simulated Palacios hosts for engine tests.

SimHost drives v3sim in-process: v3sim.main() runs each v3 tool in this process (its state lives
in files, so every call sees the host as a subprocess would), which makes many engine runs
against the simulator cheap; crash and hang faults would take this process down, so it suits
refuse faults only. Sim runs the tools as real subprocesses, for crashes (ghost slots) and the
reset window."""
import importlib.util
import os
import shutil
import subprocess
import sys

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import ProcReader
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import Host

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
V3SIM = os.path.join(ROOT, 'roles', 'simulator', 'files', 'v3sim.py')
BLOCK_MB = 4

_spec = importlib.util.spec_from_file_location('v3sim_in_process', V3SIM)
v3sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(v3sim)


class _Capture(object):
    def __init__(self):
        self.stdout, self.stderr = [], []

    def out(self, text):
        self.stdout.append(text if isinstance(text, str) else os.fsdecode(bytes(text)))

    def err(self, text):
        self.stderr.append(text if isinstance(text, str) else os.fsdecode(bytes(text)))

    def flush(self):
        pass


def in_process_runner(argv, cwd=None, env_update=None, timeout=None):
    """Same contract as tools.subprocess_runner, without a process per tool (so without its
    deadline: hang faults need Sim)."""
    capture, saved_env, saved_cwd = _Capture(), dict(os.environ), os.getcwd()
    v3sim.IO = capture
    try:
        os.environ.update(env_update or {})
        if cwd:
            os.chdir(cwd)
        rc = v3sim.main([str(a) for a in argv])
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return rc, ''.join(capture.stdout), ''.join(capture.stderr)


class SimHost(object):
    """A loaded simulated host with `blocks` free 4 MB blocks, and guest XMLs of 4 and 8 MB."""

    def __init__(self, root):
        self.root = str(root)
        self.bin = os.path.join(self.root, 'bin')
        self.settings = Settings(tools_dir=self.bin, proc_dir=os.path.join(self.root, 'proc', 'v3vee'),
                                 dev_dir=os.path.join(self.root, 'dev'),
                                 inventory_path=os.path.join(self.root, 'lib', 'inventory.db'), palacios_dir=self.root)
        self.xml = {'small': os.path.join(self.root, 'small.xml'), 'big': os.path.join(self.root, 'big.xml')}

    def tool(self, name, *args):
        rc, out, err = in_process_runner([os.path.join(self.bin, name)] + list(args),
                                         env_update={'PALACIOS_DIR': self.root})
        assert rc == 0, (name, args, out, err)
        return out

    def host(self, check_mode=False):
        return Host(self.settings, in_process_runner, check_mode=check_mode, timeout=2)

    def store(self, readonly=False):
        return InventoryStore(self.settings.inventory_path, readonly=readonly)

    def kernel(self):
        """name -> (state, mem_bytes, slot) as /proc shows it."""
        return dict((e.name, (e.state, e.mem_bytes, e.index)) for e in self.host().reader.guests())

    def records(self):
        return dict((r['name'], r) for r in self.store(readonly=True).all())

    def copy(self, root):
        shutil.copytree(self.root, str(root), symlinks=True)
        return SimHost(root)


def make_sim(root, blocks=64):
    """Install, load (4 MB blocks, so many small VMs fit) and reserve `blocks` blocks."""
    subprocess.check_call([sys.executable, V3SIM, 'install', '--root', str(root), '--python', sys.executable],
                          stdout=subprocess.DEVNULL)
    sim = SimHost(root)
    sim.tool('v3sim', 'load', '--options', 'mem_block_size=%d' % (BLOCK_MB << 20))
    for _block in range(blocks):
        sim.tool('v3_mem', '-k', '-a', str(BLOCK_MB))
    for size, mb in (('small', 4), ('big', 8)):
        with open(sim.xml[size], 'w') as handle:
            handle.write('<vm class="PC"><memory>%d</memory><cores count="1"><core/></cores></vm>' % mb)
    return sim


class Sim(object):
    """A simulated host in `root` and the engine's settings for it."""

    def __init__(self, root):
        self.root = str(root)
        self.settings = Settings(proc_dir=os.path.join(self.root, 'proc', 'v3vee'), dev_dir=os.path.join(self.root, 'dev'),
                                 tools_dir=os.path.join(self.root, 'bin'), palacios_dir=self.root,
                                 inventory_path=os.path.join(self.root, 'inventory.db'))

    def tool(self, tool, *args, **env):
        full = dict(os.environ, PALACIOS_DIR=self.root,
                    PATH=os.path.join(self.root, 'bin') + os.pathsep + os.environ.get('PATH', ''), **env)
        return subprocess.run([os.path.join(self.root, 'bin', tool)] + [str(a) for a in args], env=full,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False)

    def ok(self, tool, *args, **env):
        res = self.tool(tool, *args, **env)
        assert res.returncode == 0, (tool, args, res)
        return res.stdout.decode()

    def xml(self, name, mem_mb):
        path = os.path.join(self.root, name + '.xml')
        with open(path, 'w') as handle:
            handle.write('<vm class="PC"><memory>%d</memory><cores count="1"><core/></cores></vm>' % mem_mb)
        return path

    def host(self, check_mode=False, timeout=30):
        return Host(self.settings, subprocess_runner, check_mode=check_mode, timeout=timeout)

    def guests(self):
        return ProcReader(self.settings.proc_dir).guests()


def install_template(tmp_path_factory):
    """An installed simulated host (module not loaded) to copy per test."""
    root = tmp_path_factory.mktemp('sim') / 'host'
    subprocess.run([sys.executable, V3SIM, 'install', '--root', str(root), '--python', sys.executable],
                   check=True, stdout=subprocess.DEVNULL)
    return root


def new_sim(template, path):
    shutil.copytree(str(template), str(path), symlinks=True)
    return Sim(path)


def loaded_sim(template, path, pools=2):
    """A copy of `template` with the module loaded and `pools` pools of 128 MB reserved."""
    sim = new_sim(template, path)
    sim.ok('v3sim', 'load')
    for _pool in range(pools):
        sim.ok('v3_mem', '-a', 128)
    return sim
