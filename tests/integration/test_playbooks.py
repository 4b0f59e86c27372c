"""The collection's playbooks on a simulated localhost host kept in a temporary directory:
site.yml + provision.yml converge, a second run changes nothing, teardown.yml removes every
VM and the reservation. (The multi-host run over SSH, with recover.yml after a reboot, is the
molecule scenario extensions/molecule/fleet.)"""
import json
import os
import re
import subprocess

import yaml

from conftest import ROOT, ansible_bin, ansible_env

PLAYBOOKS = os.path.join(ROOT, 'playbooks')


def write_inventory(work):
    guest = os.path.join(work, 'sim', 'guests', 'bios-only.xml')
    host = {
        'ansible_connection': 'local',
        'palacios_module_backend': 'simulator',
        'palacios_module_simulator_root': os.path.join(work, 'sim'),
        'palacios_module_host_conf_path': os.path.join(work, 'host.conf'),
        'palacios_module_inventory_path': os.path.join(work, 'lib', 'inventory.db'),
        'palacios_module_profile': False,
        'palacios_module_recover_at_boot': False,
        'palacios_memory_total_mb': 512,
        'palacios_memory_conf_path': os.path.join(work, 'memory.conf'),
        'palacios_vms': [
            {'name': 'web1', 'config': guest, 'config_options': {'mem': 256}, 'state': 'running'},
            {'name': 'web2', 'config': guest, 'state': 'paused'},
            {'name': 'spare', 'config': guest, 'state': 'present'},
        ],
    }
    path = os.path.join(work, 'inventory.yml')
    with open(path, 'w') as handle:
        yaml.safe_dump({'all': {'children': {'palacios_hosts': {'hosts': {'localhost': host}}}}}, handle)
    return path


def play(work, inventory, *playbooks, **kwargs):
    env = ansible_env()
    env['V3VEE_HOST_CONF'] = os.path.join(work, 'host.conf')
    proc = subprocess.run([ansible_bin('ansible-playbook'), '-i', inventory]
                          + [os.path.join(PLAYBOOKS, p) for p in playbooks] + list(kwargs.get('options', ())),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          cwd=work, check=False)
    assert proc.returncode == 0, proc.stdout[-8000:]
    recap = re.search(r'^localhost\s+:\s+(.*)$', proc.stdout, re.M).group(1)
    return dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', recap))


def status(work):
    out = subprocess.run([os.path.join(work, 'sim', 'bin', 'v3sim'), 'status', '--json'],
                         stdout=subprocess.PIPE, check=True).stdout
    return json.loads(out)


def guests(work):
    with open(os.path.join(work, 'sim', 'proc', 'v3vee', 'v3-guests')) as handle:
        return dict((f[0], f[2]) for f in (line.split('\t') for line in handle.read().splitlines()))


def test_site_provision_idempotent_then_teardown_dry_run_predicts_the_teardown(tmp_path):
    work = str(tmp_path)
    inventory = write_inventory(work)
    first = play(work, inventory, 'site.yml', 'provision.yml')
    assert first['changed'] > 0
    assert guests(work) == {'web1': 'running', 'web2': 'paused'}
    st = status(work)
    assert st['loaded'] and st['reserved_bytes'] == 512 * 1048576

    again = play(work, inventory, 'site.yml', 'provision.yml')
    assert again['changed'] == 0

    # The dry run of the destructive playbook works on a host with VMs, changes nothing, and
    # predicts the same changes as the real teardown (the VM deletions, the memory release).
    dry = play(work, inventory, 'teardown.yml', options=['--check'])
    assert guests(work) == {'web1': 'running', 'web2': 'paused'}
    assert status(work)['reserved_bytes'] == 512 * 1048576
    real = play(work, inventory, 'teardown.yml')
    assert dry['failed'] == real['failed'] == 0
    assert dry['changed'] == real['changed'] == 2
    assert guests(work) == {}
    assert status(work)['reserved_bytes'] == 0
