"""Module start-up and whole-host convergence against ansible.builtin.ping, side by side.

Every play runs as its own ansible-playbook process on a simulated Palacios host (tools with no
artificial delay, connection local); the rounds interleave every play, so machine load hits them
alike. Prints one table of medians and ratios to the ping play, then what one module run costs
(AnsiballZ payload, peak memory, tool runs and /proc reads per VM). With --fleet N (needs root) it
also starts N hosts in network namespaces with their own sshd and simulated Palacios
(tests/fleet/fleet.py; name and network from V3VEE_FLEET_NAME / V3VEE_FLEET_NETWORK) and compares
v3vee_vms converging --vms VMs per host with a ping play over the same hosts. Asserts nothing.

    python benchmarks/startup_bench.py [--runs 5] [--vms 32] [--fleet 8]
"""
import argparse
import glob
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests'))
from conftest import ROOT  # noqa: E402  (importing it makes v3vee.palacios importable)

# How the integration tests run ansible-playbook (the collection link, the environment).
_spec = importlib.util.spec_from_file_location('integration_conftest',
                                               os.path.join(ROOT, 'tests', 'integration', 'conftest.py'))
integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(integration)
ansible_bin, ansible_env = integration.ansible_bin, integration.ansible_env

from ansible_collections.v3vee.palacios.plugins.module_utils import proc  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_definition  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import Host, VmJob  # noqa: E402

V3SIM = os.path.join(ROOT, 'roles', 'simulator', 'files', 'v3sim.py')
FLEET = os.path.join(ROOT, 'tests', 'fleet', 'fleet.py')
BLOCK_MB = 4
CHUNK_MB = 128  # hot-removed per v3_mem -a


def chunks(vms):
    return -(-vms * BLOCK_MB // CHUNK_MB)


GUEST = '<vm class="PC"><memory>%d</memory><cores count="1"><core/></cores></vm>' % BLOCK_MB
HOST_CONF = '''V3VEE_BACKEND=simulator
V3VEE_TOOLS_DIR={sim}/bin
V3VEE_PROC_DIR={sim}/proc/v3vee
V3VEE_DEV_DIR={sim}/dev
PALACIOS_DIR={sim}
V3VEE_KERNEL_LOG={sim}/kmsg.log
V3VEE_INVENTORY_PATH={inventory}
'''


def tree_callback(work):
    # Every play run alike writes its results as JSON (one file per host): the figures read them.
    return {'ANSIBLE_CALLBACKS_ENABLED': 'ansible.builtin.tree', 'ANSIBLE_CALLBACK_TREE_DIR': os.path.join(work, 'tree')}


def play(hosts, task, extra=''):
    return '- hosts: %s\n  gather_facts: false\n%s  tasks:\n    - %s\n' % (hosts, extra, task)


def vm_items(vms, guest, state):
    return [{'name': 'vm%02d' % i, 'config': guest, 'state': state, 'force': True} for i in range(vms)]


def plays(hosts, vms, guest):
    vms_task = 'v3vee.palacios.v3vee_vms: {vms: %s}'
    return {
        'ping': play(hosts, 'ansible.builtin.ping:'),
        'facts': play(hosts, 'v3vee.palacios.v3vee_facts:'),
        'vm': play(hosts, 'v3vee.palacios.v3vee_vm: %s' % json.dumps(vm_items(1, guest, 'running')[0])),
        'loop': play(hosts, 'v3vee.palacios.v3vee_vm: "{{ item }}"\n      loop: %s'
                     % json.dumps(vm_items(vms, guest, 'running'))),
        'vms': play(hosts, vms_task % json.dumps(vm_items(vms, guest, 'running'))),
        'vms_absent': play(hosts, vms_task % json.dumps(vm_items(vms, guest, 'absent'))),
    }


class Runner(object):
    def __init__(self, work, inventory, env, forks=5):
        self.work, self.inventory, self.env, self.forks = work, inventory, env, forks
        self.times = {}

    def write(self, name, text):
        path = os.path.join(self.work, name + '.yml')
        with open(path, 'w') as handle:
            handle.write(text)
        return path

    def run(self, label, path, timed=True):
        start = time.time()
        out = subprocess.run([ansible_bin('ansible-playbook'), '-i', self.inventory, '-f', str(self.forks), path],
                             env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, cwd=self.work, check=False)
        took = time.time() - start
        if out.returncode != 0:
            raise SystemExit('%s failed (rc %d):\n%s\n%s' % (label, out.returncode, out.stdout[-4000:], out.stderr[-2000:]))
        if timed:
            self.times.setdefault(label, []).append(took)
        return took

    def result(self, host):
        """The last task result of the last play on `host` (callback ansible.builtin.tree)."""
        with open(os.path.join(self.work, 'tree', host)) as handle:
            return json.load(handle)


def local_host(work, vms):
    """A simulated host in work/sim with room for `vms` VMs of one 4 MB block each."""
    sim = os.path.join(work, 'sim')
    subprocess.check_call([sys.executable, V3SIM, 'install', '--root', sim, '--python', sys.executable],
                          stdout=subprocess.DEVNULL)
    subprocess.check_call([os.path.join(sim, 'bin', 'v3sim'), 'load', '--options',
                           'mem_block_size=%d' % (BLOCK_MB << 20)], stdout=subprocess.DEVNULL)
    for _chunk in range(chunks(vms)):
        subprocess.check_call([os.path.join(sim, 'bin', 'v3_mem'), '-a', str(CHUNK_MB)],
                              env=dict(os.environ, PALACIOS_DIR=sim), stdout=subprocess.DEVNULL)
    guest = os.path.join(work, 'guest.xml')
    with open(guest, 'w') as handle:
        handle.write(GUEST)
    conf = os.path.join(work, 'host.conf')
    with open(conf, 'w') as handle:
        handle.write(HOST_CONF.format(sim=sim, inventory=os.path.join(work, 'lib', 'inventory.db')))
    return sim, guest, conf


def local_rows(args, work):
    sim, guest, conf = local_host(work, args.vms)
    env = dict(ansible_env(), V3VEE_HOST_CONF=conf, **tree_callback(work))
    inventory = os.path.join(work, 'hosts.ini')
    with open(inventory, 'w') as handle:
        handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    runner = Runner(work, inventory, env)
    paths = dict((name, runner.write(name, text)) for name, text in plays('localhost', args.vms, guest).items())
    n = args.vms
    for _round in range(args.runs):
        runner.run('ping', paths['ping'])
        runner.run('v3vee_facts', paths['facts'])
        runner.run('v3vee_vms %d VMs absent -> running' % n, paths['vms'])
        up = runner.result('localhost')
        runner.run('v3vee_vms %d VMs no-op' % n, paths['vms'])
        runner.run('one v3vee_vm no-op', paths['vm'])
        runner.run('v3vee_vms %d VMs running -> absent (force)' % n, paths['vms_absent'])
        runner.run('loop of %d v3vee_vm absent -> running' % n, paths['loop'])
        runner.run('loop of %d v3vee_vm no-op' % n, paths['loop'])
        runner.run('teardown', paths['vms_absent'], timed=False)
    return runner.times, up, sim, guest, conf, env, inventory, paths


def payload_sizes(work, env, inventory, paths):
    """Bytes of the AnsiballZ file each module ships (kept with ANSIBLE_KEEP_REMOTE_FILES)."""
    sizes = {}
    for name, module in (('ping', 'ping'), ('facts', 'v3vee_facts'), ('vm', 'v3vee_vm'), ('vms', 'v3vee_vms')):
        tmp = os.path.join(work, 'remote-tmp-' + name)
        run_env = dict(env, ANSIBLE_KEEP_REMOTE_FILES='1', ANSIBLE_REMOTE_TMP=tmp)
        subprocess.run([ansible_bin('ansible-playbook'), '-i', inventory, paths[name]], env=run_env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work, check=True)
        found = glob.glob(os.path.join(tmp, '*', 'AnsiballZ_%s.py' % module))
        sizes[module] = os.path.getsize(found[0]) if found else None
    return sizes


def module_peak_rss(conf, guest, vms):
    """Peak RSS (MB) of v3vee_vms converging `vms` VMs, run as Ansible runs it on the target."""
    args = os.path.join(os.path.dirname(guest), 'args.json')
    with open(args, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': {'vms': vm_items(vms, guest, 'running')}}, handle)
    collections = os.path.join(ROOT, '.tmp', 'collections')
    env = dict(os.environ, V3VEE_HOST_CONF=conf, PYTHONPATH=collections)
    child = subprocess.Popen([sys.executable, '-m', 'ansible_collections.v3vee.palacios.plugins.modules.v3vee_vms',
                              args], env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    return usage.ru_maxrss / 1024.0, status


def engine_counts(sim, guest, vms, work):
    """Tool runs and /proc file reads per VM of one converge_all (v3vee_vms) and of a loop of
    single converges (v3vee_vm), by desired state."""
    reads = {'n': 0}
    original = proc.ProcReader._read

    def counting(self, name):
        reads['n'] += 1
        return original(self, name)
    proc.ProcReader._read = counting
    settings = Settings(tools_dir=os.path.join(sim, 'bin'), proc_dir=os.path.join(sim, 'proc', 'v3vee'),
                        dev_dir=os.path.join(sim, 'dev'), inventory_path=os.path.join(work, 'engine.db'),
                        palacios_dir=sim)
    store = InventoryStore(settings.inventory_path)
    definition = {'image': None, 'config': guest, 'config_options': {}}
    shape = check_definition(**definition)
    rows = []
    try:
        # From whatever the runs before left (absent first), then up, no-op, pause, down.
        for way in ('v3vee_vms', 'loop of v3vee_vm'):
            for desired in ('absent', 'running', 'running', 'paused', 'absent'):
                jobs = [VmJob('vm%02d' % i, desired, definition, shape, force=True) for i in range(vms)]
                host = Host(settings, subprocess_runner)
                reads['n'] = 0
                with store.transaction():
                    for batch in ([jobs] if way == 'v3vee_vms' else [[job] for job in jobs]):
                        host.converge_all(store, batch)
                rows.append((way, desired, len(host.tools.commands) / float(vms), reads['n'] / float(vms), reads['n']))
    finally:
        proc.ProcReader._read = original
    return rows


def fleet_rows(args, work, repo_guest_text):
    fleet_dir = os.path.join(work, 'fleet')
    subprocess.check_call([sys.executable, FLEET, 'up', '--workdir', fleet_dir, '--hosts', str(args.fleet)],
                          stdout=subprocess.DEVNULL)
    try:
        hosts = ['v3h%d' % i for i in range(1, args.fleet + 1)]
        setup = ('import subprocess, os\n'
                 'subprocess.check_call(["/usr/bin/python3", %r, "install", "--root", "/opt/v3vee-sim", "--python", '
                 '"/usr/bin/python3"], stdout=subprocess.DEVNULL)\n'
                 'subprocess.check_call(["/opt/v3vee-sim/bin/v3sim", "load", "--options", "mem_block_size=%d"], '
                 'stdout=subprocess.DEVNULL)\n'
                 'for _chunk in range(%d):\n'
                 '    subprocess.check_call(["/opt/v3vee-sim/bin/v3_mem", "-a", "%d"], '
                 'env=dict(os.environ, PALACIOS_DIR="/opt/v3vee-sim"), stdout=subprocess.DEVNULL)\n'
                 'open("/opt/v3vee-sim/guest.xml", "w").write(%r)\n'
                 'open("/etc/v3vee/host.conf", "w").write(%r)\n'
                 % (V3SIM, BLOCK_MB << 20, chunks(args.vms), CHUNK_MB, repo_guest_text,
                    HOST_CONF.format(sim='/opt/v3vee-sim', inventory='/var/lib/v3vee/inventory.db')))
        for host in hosts:
            subprocess.check_call([sys.executable, FLEET, 'exec', '--workdir', fleet_dir, '--host', host, '--',
                                   '/usr/bin/python3', '-c', setup])
        env = dict(ansible_env(), **tree_callback(work))
        # ssh's control sockets live under ~/.ansible/cp by default: a long HOME overflows the
        # 108-byte limit of a Unix socket path ("too long for Unix domain socket").
        env['ANSIBLE_SSH_CONTROL_PATH_DIR'] = os.path.join(work, 'cp')
        env.pop('ANSIBLE_PYTHON_INTERPRETER', None)  # the hosts' own python (inventory.yml)
        runner = Runner(work, os.path.join(fleet_dir, 'inventory.yml'), env, forks=args.fleet)
        texts = plays('palacios_hosts', args.vms, '/opt/v3vee-sim/guest.xml')
        paths = dict((name, runner.write('fleet_' + name, texts[name])) for name in ('ping', 'vms', 'vms_absent'))
        for _round in range(args.runs):
            runner.run('fleet: ping play, %d hosts' % args.fleet, paths['ping'])
            runner.run('fleet: v3vee_vms %d hosts x %d VMs absent -> running' % (args.fleet, args.vms), paths['vms'])
            runner.run('teardown', paths['vms_absent'], timed=False)
        return runner.times
    finally:
        subprocess.call([sys.executable, FLEET, 'down', '--workdir', fleet_dir], stdout=subprocess.DEVNULL)


def table(times, ping_label):
    base = statistics.median(times[ping_label])
    lines = []
    for label, values in times.items():
        median = statistics.median(values)
        lines.append('| %s | %.2f | %.2f | %d |' % (label, median, median / base, len(values)))
    return lines


def load_line():
    with open('/proc/loadavg') as handle:
        load = handle.read().split()[:3]
    return 'load average %s over %d CPUs' % (' '.join(load), os.cpu_count())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--vms', type=int, default=32)
    parser.add_argument('--fleet', type=int, default=0, help='hosts in the fleet part (0: skip it; needs root)')
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='v3vee-startup-')
    try:
        print('before: %s' % load_line(), flush=True)
        times, up, sim, guest, conf, env, inventory, paths = local_rows(args, work)
        print('| play (localhost, simulated host) | median s | x ping | runs |')
        print('|---|---|---|---|')
        print('\n'.join(table(times, 'ping')), flush=True)
        if args.fleet:
            with open(guest) as handle:
                fleet_times = fleet_rows(args, work, handle.read())
            print('\n'.join(table(fleet_times, 'fleet: ping play, %d hosts' % args.fleet)))
        print('after: %s' % load_line())
        print('\nv3vee_vms %d VMs absent -> running: %d tool runs, module duration %.3f s'
              % (args.vms, len(up['commands']), up['duration']))
        print('AnsiballZ payload bytes: %s' % payload_sizes(work, env, inventory, paths))
        subprocess.check_call([ansible_bin('ansible-playbook'), '-i', inventory, paths['vms_absent']],
                              env=env, stdout=subprocess.DEVNULL, cwd=work)
        rss, status = module_peak_rss(conf, guest, args.vms)
        print('peak RSS of one v3vee_vms run (%d VMs absent -> running): %.1f MB (exit status %d)'
              % (args.vms, rss, status))
        print('| engine, %d VMs | desired | tool runs/VM | /proc reads/VM | /proc reads |' % args.vms)
        print('|---|---|---|---|---|')
        for way, desired, tools, reads, total in engine_counts(sim, guest, args.vms, work):
            print('| %s | %s | %.2f | %.2f | %d |' % (way, desired, tools, reads, total))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
