"""playbooks/status.yml (role status_page) with the real ansible-playbook, rendered from three
hosts: a simulated Palacios host with VMs in every category and state (two NUMA nodes, drift,
an ERROR VM, a VM with a hostile name), a simulated host whose module is not loaded, and a host
whose SSH port nobody answers on. The page is then opened in headless Chromium and checked in
the rendered DOM. The opt-in systemd timer's service is run as written to regenerate the page.
(The same over real SSH to namespace hosts is the molecule scenario extensions/molecule/status_page.)"""
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, ansible_bin, ansible_env

sys.path.insert(0, os.path.join(ROOT, 'tests', 'status_page'))
import browse  # noqa: E402  pylint: disable=wrong-import-position

V3SIM = os.path.join(ROOT, 'roles', 'simulator', 'files', 'v3sim.py')
HOSTILE = '<img src=x onerror=alert(1)>'
GUEST = '<vm class="PC">\n  <memory>128</memory>\n  <cores count="1"><core/></cores>\n</vm>\n'

SETUP = '''
- name: VMs in every category and state
  hosts: sim1
  gather_facts: false
  vars:
    guest: "{work}/guest.xml"
  tasks:
    - name: Recorded VMs in their desired states
      v3vee.palacios.v3vee_vm: {{name: "{{{{ item.0 }}}}", config: "{{{{ guest }}}}", state: "{{{{ item.1 }}}}"}}
      loop: [[web1, running], [web2, paused], [db1, stopped], [batch, running], [crash1, running]]
    - name: Recorded only (inactive in inventory)
      v3vee.palacios.v3vee_inventory:
        vms: [{{name: spare, config: "{{{{ guest }}}}"}}]
'''


def readme_command():
    """The status page command of roles/status_page/README.md (page, self-reload and timer; README.md's
    shorter one runs in tests/integration/test_docs_commands.py)."""
    with open(os.path.join(ROOT, 'roles', 'status_page', 'README.md')) as handle:
        block = re.search(r'```sh\n(ansible-playbook .*?)```', handle.read(), re.S).group(1)
    return shlex.split(block.replace('\\\n', ' '))


def run(argv, **kwargs):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False, **kwargs)
    assert proc.returncode == 0, '%s failed (%s):\n%s' % (shlex.join(argv), proc.returncode, proc.stdout[-8000:])
    return proc.stdout


def sim_host(work, name, loaded=True):
    """A simulated Palacios host under work/name, and a Python that sees it (its host.conf)."""
    root = os.path.join(work, name)
    sim = os.path.join(root, 'sim')
    run([sys.executable, V3SIM, 'install', '--root', sim])
    run([os.path.join(sim, 'bin', 'v3sim'), 'host', '--nodes', '2', '--cpus', '4'])
    if loaded:
        run([os.path.join(sim, 'bin', 'v3sim'), 'load'])
        # one-vcore guests take their memory from node 0 (pcore 0's node): most of it goes there
        for node in (0,) * 8 + (1,) * 2:
            run([os.path.join(sim, 'bin', 'v3_mem'), '-n', str(node), '-a', '128'], env=dict(os.environ, PALACIOS_DIR=sim))
    conf = os.path.join(root, 'host.conf')
    with open(conf, 'w') as handle:
        handle.write('V3VEE_BACKEND=simulator\nV3VEE_TOOLS_DIR={0}/bin\nV3VEE_PROC_DIR={0}/proc/v3vee\n'
                     'V3VEE_DEV_DIR={0}/dev\nPALACIOS_DIR={0}\nV3VEE_KERNEL_LOG={0}/kmsg.log\n'
                     'V3VEE_INVENTORY_PATH={1}/inventory.db\n'.format(sim, root))
    # Each local "host" finds its own Palacios through V3VEE_HOST_CONF in its interpreter's environment.
    python = os.path.join(root, 'python')
    with open(python, 'w') as handle:
        handle.write('#!/bin/sh\nV3VEE_HOST_CONF=%s exec %s "$@"\n' % (shlex.quote(conf), shlex.quote(sys.executable)))
    os.chmod(python, 0o755)
    return sim, python


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('status'))
    sim, python1 = sim_host(work, 'sim1')
    _sim2, python2 = sim_host(work, 'bare', loaded=False)
    with open(os.path.join(work, 'guest.xml'), 'w') as handle:
        handle.write(GUEST)
    inventory = os.path.join(work, 'inventory.yml')
    with open(inventory, 'w') as handle:
        yaml.safe_dump({'all': {'hosts': {
            'sim1': {'ansible_connection': 'local', 'ansible_python_interpreter': python1},
            'bare': {'ansible_connection': 'local', 'ansible_python_interpreter': python2},
            'gone': {'ansible_host': '127.0.0.1', 'ansible_port': closed_port(),
                     'ansible_ssh_common_args': '-o BatchMode=yes -o ConnectTimeout=5'},
        }}}, handle, sort_keys=False)
    setup = os.path.join(work, 'setup.yml')
    with open(setup, 'w') as handle:
        handle.write(SETUP.format(work=work))
    run([ansible_bin('ansible-playbook'), '-i', inventory, setup], env=ansible_env(), cwd=work)
    tools = os.path.join(sim, 'bin')
    env = dict(os.environ, PALACIOS_DIR=sim)
    # Behind the inventory's back: batch paused (drift), crash1's vcores fail (ERROR), two VMs
    # made on the command line (not in inventory), one of them named to attack the page.
    run([os.path.join(tools, 'v3_pause'), '/dev/v3-vm3'], env=env)
    run([os.path.join(tools, 'v3sim'), 'vm-error', '4'], env=env)
    run([os.path.join(tools, 'v3_create'), '-b', 'guest.xml', 'rogue'], env=env, cwd=work)
    run([os.path.join(tools, 'v3_create'), '-b', 'guest.xml', HOSTILE], env=env, cwd=work)
    run([os.path.join(tools, 'v3_launch'), '/dev/v3-vm6'], env=env)

    units = os.path.join(work, 'units')
    os.mkdir(units)
    # The README's command as written (work holds inventory.yml), then settings that keep the
    # timer's units in the test's directory and give the page a title to escape.
    argv = readme_command() + ['-e', json.dumps({
        'status_page_title': 'Palacios <lab> & fleet', 'status_page_vm_mem_mb': [128, 256],
        'status_page_timer_start': False, 'status_page_timer_unit_dir': units,
        'status_page_timer_vars_path': os.path.join(units, 'v3vee-status.json')})]
    env = ansible_env()
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env['PATH']
    out = run(argv, env=env, cwd=work)
    page = os.path.join(work, 'status', 'palacios.html')
    with open(os.path.join(work, 'status', 'palacios.json')) as handle:
        data = json.load(handle)
    return {'work': work, 'page': page, 'data': data, 'stdout': out, 'units': units, 'inventory': inventory}


def host(data, name):
    return next(h for h in data['hosts'] if h['name'] == name)


def test_play_never_fails_for_unreachable_or_unloaded_hosts(fleet):
    recap = dict((name, int(failed)) for name, failed in re.findall(
        r'^(\w+)\s+:\s+ok=\d+\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)', fleet['stdout'], re.M))
    assert set(recap) == {'sim1', 'bare', 'gone'}
    assert recap == {'sim1': 0, 'bare': 0, 'gone': 0}


def test_json_has_every_host_as_it_is(fleet):
    data = fleet['data']
    assert [h['name'] for h in data['hosts']] == ['sim1', 'bare', 'gone']
    assert [h['status'] for h in data['hosts']] == ['up', 'not_loaded', 'unreachable']
    assert data['summary']['hosts'] == {'total': 3, 'up': 1, 'not_loaded': 1, 'unreachable': 1, 'failed': 0}
    assert 'Connection refused' in host(data, 'gone')['problems'][0]
    assert data['collection_version'] == yaml.safe_load(open(os.path.join(ROOT, 'galaxy.yml')))['version']
    assert data['title'] == 'Palacios <lab> & fleet' and data['refresh_seconds'] == 60


def test_json_has_vms_in_every_category_and_state(fleet):
    sim1 = host(fleet['data'], 'sim1')
    states = dict((vm['name'], (vm['category'], vm['state'])) for vm in sim1['vms'])
    assert states == {
        'web1': ('active_inventory', 'running'), 'web2': ('active_inventory', 'paused'),
        'db1': ('active_inventory', 'stopped'), 'batch': ('active_inventory', 'paused'),
        'crash1': ('active_inventory', 'ERROR'), 'spare': ('inactive_inventory', 'inactive'),
        'rogue': ('not_in_inventory', 'stopped'), HOSTILE: ('not_in_inventory', 'running'),
    }
    summary = fleet['data']['summary']
    assert summary['vms']['by_category'] == {'active_inventory': 5, 'inactive_inventory': 1, 'not_in_inventory': 2}
    assert summary['drifted'] == 2  # batch (paused behind our back) and crash1 (ERROR)
    assert [s['state'] for s in sim1['slots'][:8]] == ['used', 'used', 'used', 'used', 'broken', 'used', 'used', 'free']
    # 10 x 128 MB reserved on two nodes, 7 VMs hold 7 blocks: three 128 MB VMs still fit
    assert summary['memory']['reserved_bytes'] == 10 * 128 * 1048576
    assert summary['memory']['used_bytes'] == 7 * 128 * 1048576 + 2 * 32768  # + Palacios' part of each seed pool
    assert summary['fits'] == sim1['memory']['fits'] and summary['fits'][0] == {'mem_mb': 128, 'vms': 3}
    assert [n['node'] for n in sim1['memory']['nodes']] == [0, 1]


def test_page_in_a_real_browser(fleet):
    shot = os.path.join(fleet['work'], 'page.png')
    rep = browse.report(fleet['page'], screenshot=shot)
    dom = rep['dom']
    assert rep['console_errors'] == []
    assert rep['overflow'] == {'wide': [], 'narrow': [], 'print': []}
    assert dom['fetches'] == []
    assert dom['title'] == 'Palacios <lab> & fleet' and dom['refresh'] == '60'
    assert [(h['name'], h['status']) for h in dom['hosts']] == [
        ('sim1', u'\u2714 up'), ('bare', u'\u25cb module not loaded'), ('gone', u'\u2716 unreachable')]
    sim1 = dom['hosts'][0]
    rows = dict((vm['Name'], vm) for vm in sim1['vms'])
    assert set(rows) == {'web1', 'web2', 'db1', 'batch', 'crash1', 'spare', 'rogue', HOSTILE}
    # the hostile name is text in the DOM, not an element
    assert sim1['injected'] == 0 and rows[HOSTILE]['Category'] == 'Active, not in inventory'
    assert rows['crash1']['State'] == u'\u2716 ERROR' and rows['spare']['State'] == u'\u25cb inactive'
    assert rows['batch']['Drift'].startswith(u'\u26a0 state_changed')
    assert rows['web1']['Drift'] == u'\u2714 in sync' and rows['rogue']['Drift'] == 'not recorded'
    assert 'simulated' in sim1['facts'] and 'module loaded' in sim1['facts']
    assert len(sim1['slots']) == 32 and 'broken' in sim1['slots'][4]['cls']
    assert 'crash1' in sim1['slots'][4]['title']
    vm_msgs = [m for m in sim1['messages'] if m['vm_scoped']]
    assert vm_msgs and any(m['tag'] == u'VM ' + HOSTILE for m in vm_msgs)
    assert any('simulated vcore failure' in m['text'] for m in vm_msgs)
    assert 'Connection refused' in ' '.join(dom['hosts'][2]['problems'])
    assert dom['hosts'][1]['vms'] == []
    sort = rep['sort']
    assert sort['ascending'] == sorted(sort['before'], key=str.lower) and sort['descending'] == sort['ascending'][::-1]
    assert rep['print_hides_stale_banner']
    assert os.path.getsize(shot) > 10000


def test_timer_service_regenerates_the_page(fleet):
    units = fleet['units']
    with open(os.path.join(units, 'v3vee-status.timer')) as handle:
        timer = handle.read()
    assert 'OnUnitActiveSec=1min' in timer and 'Unit=v3vee-status.service' in timer
    with open(os.path.join(units, 'v3vee-status.service')) as handle:
        service = handle.read()
    lines = dict(line.split('=', 1) for line in service.splitlines() if '=' in line and not line.startswith('#'))
    env = dict(os.environ)
    for line in service.splitlines():
        if line.startswith('Environment='):
            key, value = shlex.split(line.split('=', 1)[1])[0].split('=', 1)
            env[key] = value
    os.remove(fleet['page'])
    # systemd's quoting of these paths is the shell's: run ExecStart as systemd would
    run(shlex.split(lines['ExecStart']), env=env, cwd=lines['WorkingDirectory'])
    with open(fleet['page']) as handle:
        page = handle.read()
    assert '<title>Palacios &lt;lab&gt; &amp; fleet</title>' in page
    assert '<meta http-equiv="refresh" content="60">' in page
    if shutil.which('systemd-analyze'):
        proc = subprocess.run(['systemd-analyze', 'verify', os.path.join(units, 'v3vee-status.timer'),
                               os.path.join(units, 'v3vee-status.service')],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        assert 'v3vee-status' not in proc.stdout, proc.stdout


def test_check_mode_writes_nothing(fleet):
    page = os.path.join(fleet['work'], 'check', 'page.html')
    out = run([ansible_bin('ansible-playbook'), '--check', '-i', fleet['inventory'],
               os.path.join(ROOT, 'playbooks', 'status.yml'), '-e', 'status_page_path=' + page],
              env=ansible_env(), cwd=fleet['work'])
    assert not os.path.exists(os.path.dirname(page))
    assert re.search(r'^sim1\s+:\s+ok=\d+\s+changed=[1-9]', out, re.M), out[-3000:]
