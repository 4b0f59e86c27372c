"""Live migration between two simulated Palacios hosts on this machine (two simulator roots, the
stream over real TCP on 127.0.0.1), through the real ansible-playbook: live_migration/play.yml."""
import json
import os
import shutil
import socket
import subprocess

from conftest import ROOT, ansible_bin, ansible_env

PLAY = os.path.join(ROOT, 'tests', 'integration', 'live_migration', 'play.yml')
GUESTS = os.path.join(ROOT, 'roles', 'simulator', 'files', 'guests')


def free_ports(count):
    """Ports nobody listens on now, held until all are chosen so they differ."""
    socks = []
    try:
        for _number in range(count):
            sock = socket.socket()
            sock.bind(('0.0.0.0', 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def test_live_migration_between_two_simulated_hosts(tmp_path):
    work = str(tmp_path)
    guests = os.path.join(work, 'guests')          # one path on both hosts: the config moves by its sha256
    os.makedirs(guests)
    shutil.copy(os.path.join(GUESTS, 'bios-only.xml'), os.path.join(guests, 'web.xml'))
    with open(os.path.join(guests, 'nested.xml'), 'w') as handle:
        handle.write('<vm class="PC"><memory>128</memory><paging mode="nested"/><cores count="1"/></vm>\n')
    hosts = {}
    for name in ('src', 'dst'):
        hosts[name] = {'ansible_connection': 'local', 'ansible_python_interpreter': ansible_env()['ANSIBLE_PYTHON_INTERPRETER'],
                       'sim_root': os.path.join(work, name), 'host_conf': os.path.join(work, name, 'host.conf'),
                       'inventory_path': os.path.join(work, name, 'lib', 'inventory.db')}
    with open(os.path.join(work, 'hosts.json'), 'w') as handle:
        json.dump({'all': {'hosts': hosts}}, handle)
    extra = {'work_dir': work, 'ports': free_ports(6)}
    proc = subprocess.run([ansible_bin('ansible-playbook'), '-i', os.path.join(work, 'hosts.json'), PLAY,
                           '-e', json.dumps(extra)], env=ansible_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, cwd=work, check=False)
    assert proc.returncode == 0 and 'failed=0' in proc.stdout, proc.stdout[-15000:]
    ran = {}
    for name in ('src', 'dst'):
        with open(os.path.join(work, name, 'tools.log')) as handle:
            ran[name] = [json.loads(line) for line in handle]
    # The nested-paging receive and the check runs ran no tool: every v3_receive is one of the four real ones.
    receives = [argv for name in ran for argv in ran[name] if argv[0] == 'v3_receive']
    assert len(receives) == 4, receives
    assert all(argv[2:3] == ['KEYED_STREAM'] and argv[3].startswith('net:a:0.0.0.0:') for argv in receives)
