"""A simulated Palacios host (roles/simulator/files/v3sim.py in a temp root) and a runner for the
real modules (AnsibleModule, SQLite inventory) against it, in-process."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(HERE))))
V3SIM = os.path.join(REPO, 'roles', 'simulator', 'files', 'v3sim.py')
BIOS_XML = os.path.join(REPO, 'roles', 'simulator', 'files', 'guests', 'bios-only.xml')


class SimHost(object):
    def __init__(self, root):
        self.root = str(root)
        self.bin = os.path.join(self.root, 'bin')
        self.proc = os.path.join(self.root, 'proc', 'v3vee')
        self.inventory = os.path.join(self.root, 'lib', 'inventory.db')
        self.conf = os.path.join(self.root, 'host.conf')
        with open(self.conf, 'w') as handle:
            handle.write('V3VEE_BACKEND=simulator\nV3VEE_TOOLS_DIR=%s\nV3VEE_PROC_DIR=%s\nV3VEE_DEV_DIR=%s\n'
                         'PALACIOS_DIR=%s\nV3VEE_INVENTORY_PATH=%s\nV3VEE_SYS_DIR=%s\n'
                         % (self.bin, self.proc, os.path.join(self.root, 'dev'), self.root, self.inventory,
                            os.path.join(self.root, 'sys')))

    def tool(self, name, *args):
        env = dict(os.environ, PALACIOS_DIR=self.root, PATH=self.bin + os.pathsep + os.environ.get('PATH', ''))
        env.pop('V3VEE_SIM_ROOT', None)
        proc = subprocess.run([os.path.join(self.bin, name)] + [str(a) for a in args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        assert proc.returncode == 0, (name, args, proc.stdout, proc.stderr)
        return proc.stdout

    def status(self):
        return json.loads(self.tool('v3sim', 'status', '--json'))

    def guests(self):
        """{name: (slot, state)} from v3-guests."""
        with open(os.path.join(self.proc, 'v3-guests')) as handle:
            fields = [line.split('\t') for line in handle.read().splitlines()]
        return dict((f[0], (int(f[1].rsplit('vm', 1)[1]), f[2])) for f in fields)

    def records(self):
        """Inventory rows as dicts, timestamps left out."""
        if not os.path.exists(self.inventory):
            return {}
        conn = sqlite3.connect(self.inventory)
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute('SELECT * FROM vms').fetchall()
        finally:
            conn.close()
        return dict((r['name'], dict((k, r[k]) for k in r.keys() if k not in ('created_at', 'updated_at')))
                    for r in rows)


@pytest.fixture(scope='session')
def sim_template(tmp_path_factory):
    """Installed, module loaded, 512 MB reserved: built once, copied per test."""
    root = tmp_path_factory.mktemp('simtemplate') / 'sim'
    subprocess.run([sys.executable, V3SIM, 'install', '--root', str(root), '--python', sys.executable],
                   check=True, stdout=subprocess.DEVNULL)
    host = SimHost(root)
    host.tool('v3sim', 'load')
    for _chunk in range(4):
        host.tool('v3_mem', '-a', '128')
    return root


@pytest.fixture
def sim(sim_template, tmp_path):
    root = tmp_path / 'sim'
    shutil.copytree(str(sim_template), str(root), symlinks=True)
    return SimHost(root)


@pytest.fixture
def run_module(sim, monkeypatch, capsys):
    """run_module(module, check_mode=False, **args) -> the module's JSON result."""
    monkeypatch.setenv('V3VEE_HOST_CONF', sim.conf)
    for name in ('V3VEE_TOOLS_DIR', 'V3VEE_PROC_DIR', 'V3VEE_DEV_DIR', 'V3VEE_INVENTORY_PATH', 'PALACIOS_DIR',
                 'V3VEE_SYS_DIR'):
        monkeypatch.delenv(name, raising=False)

    def run(module, check_mode=False, **args):
        if check_mode:
            args['_ansible_check_mode'] = True
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
        return json.loads(capsys.readouterr().out)
    return run
