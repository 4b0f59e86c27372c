"""A simulated Palacios host (v3sim, real subprocesses) for engine tests, and the engine's
settings for it."""
import os
import shutil
import subprocess
import sys

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import ProcReader
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import Host

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
V3SIM = os.path.join(REPO, 'roles', 'simulator', 'files', 'v3sim.py')


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
