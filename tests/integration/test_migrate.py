"""Moving VMs between hosts (role v3vee.palacios.migrate, playbooks/migrate.yml) on a fleet of three
simulated Palacios hosts reached over real SSH, whose network namespaces reach each other
(tests/fleet/fleet.py up --routed), so live migration runs over real TCP between them.

In order: the README's "Moving VMs between hosts" commands exactly as written (blocks marked
run-by=tests/integration/test_migrate.py; two hosts, so the one-host docs test cannot run them),
then moves checked from outside the role (tests/integration/migrate/moves.yml), a checkpoint
damaged on the way (checksum.yml), and moves that fail at each other step (failures.yml)."""
import os
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from conftest import ROOT, ansible_bin, ansible_env
from test_docs_commands import shell_commands

FLEET = os.path.join(ROOT, 'tests', 'fleet', 'fleet.py')
PLAYS = os.path.join(ROOT, 'tests', 'integration', 'migrate')
THIS = 'tests/integration/test_migrate.py'


def readme_commands():
    with open(os.path.join(ROOT, 'README.md')) as handle:
        return shell_commands(handle.read(), run_by=THIS)


def run(argv, env, cwd=None, timeout=900):
    return subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)


class Corrupter(threading.Thread):
    """Flips one byte of the 'header' file inside the first checkpoint archive that lands in
    `directory` (the target's copy module renames it into place whole), as a bad disk or a
    broken network card would: tar still unpacks it, only the file's sha256 tells."""

    def __init__(self, directory):
        super().__init__(daemon=True)
        self.directory, self.stop, self.damaged = directory, threading.Event(), None

    def run(self):
        while not self.stop.is_set():
            # not Ansible's temporary copy (.ansible_tmp...): it becomes the archive by a rename
            archives = [n for n in os.listdir(self.directory) if n.endswith('.tar') and not n.startswith('.')] \
                if os.path.isdir(self.directory) else []
            if archives:
                path = os.path.join(self.directory, archives[0])
                with tarfile.open(path) as archive:
                    member = next(m for m in archive.getmembers() if m.name.endswith('/header'))
                with open(path, 'r+b') as handle:
                    handle.seek(member.offset_data)
                    byte = handle.read(1)
                    handle.seek(member.offset_data)
                    handle.write(bytes([byte[0] ^ 0xFF]))
                self.damaged = member.name
                return
            time.sleep(0.002)


@pytest.mark.skipif(os.geteuid() != 0, reason='the fleet needs root (network and mount namespaces)')
def test_vms_move_between_fleet_hosts_and_failed_moves_leave_the_source_as_it_was(tmp_path):
    commands = readme_commands()
    assert len(commands) >= 3, 'README shows no migrate commands marked run-by=%s' % THIS
    workdir = str(tmp_path / 'fleet')
    env = dict(ansible_env(), ANSIBLE_PIPELINING='1', ANSIBLE_HOST_KEY_CHECKING='true',
               V3VEE_FLEET_NAME=os.environ.get('V3VEE_MIGRATE_FLEET_NAME', 'v3mig'),
               V3VEE_FLEET_NETWORK=os.environ.get('V3VEE_MIGRATE_FLEET_NETWORK', '198.18.237.0/24'),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    up = run([sys.executable, FLEET, 'up', '--workdir', workdir, '--hosts', '3', '--routed'], env, timeout=300)
    assert up.returncode == 0, up.stdout[-4000:]
    inventory = os.path.join(workdir, 'inventory.yml')

    def playbook(name):
        proc = run([ansible_bin('ansible-playbook'), '-i', inventory, os.path.join(PLAYS, name)], env)
        assert proc.returncode == 0, '%s failed:\n%s' % (name, proc.stdout[-12000:])

    try:
        playbook('setup.yml')
        for command in commands:
            # in the fleet's directory, where its inventory.yml is: the reader's own inventory
            proc = run(['bash', '-c', command], env, cwd=workdir)
            assert proc.returncode == 0, '%s failed:\n%s' % (command, proc.stdout[-12000:])
            if '--check' in command.split():
                # check mode says what each host would do, and changes nothing
                assert '"restore: v3_create from the recorded definition' in proc.stdout, proc.stdout[-6000:]
                assert ' changed=0 ' in proc.stdout, proc.stdout[-3000:]
        playbook('moves.yml')
        corrupter = Corrupter(os.path.join(workdir, 'hosts', 'v3h2', 'root', 'var', 'lib', 'v3vee', 'checkpoints'))
        corrupter.start()
        try:
            playbook('checksum.yml')
        finally:
            corrupter.stop.set()
            corrupter.join()
        assert corrupter.damaged is not None
        playbook('failures.yml')
    finally:
        down = run([sys.executable, FLEET, 'down', '--workdir', workdir], env, timeout=300)
        assert down.returncode == 0, down.stdout[-4000:]
