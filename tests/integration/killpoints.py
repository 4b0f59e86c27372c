"""Killed at every point: every module operation that runs v3 tools is killed with SIGKILL - the
whole process tree under ansible-playbook - at every point before and after each tool acts and
while it commits the inventory, then the same task runs again. The re-run must converge to what
an uninterrupted run leaves, create no duplicate VM, find the host lock free at once, and leave
an inventory that agrees with /proc (v3vee_facts: no drift) with no record lost.

How a run is held at a point (so the kill lands exactly there, whatever the machine's load):

* before a tool acts: a simulator hang fault on the Nth run of that tool (`fault add TOOL hang`,
  preceded by N-1 zero-second ones); the tool logs the hang to the kernel log as it starts;
* after a tool acted, before it exits (the module has not seen it finish): the same with `--after-acting`;
* during the inventory commit: a reader holds the SQLite database (a shared lock), so the
  module's COMMIT waits for its exclusive lock; a probe sees the pending lock once it waits.

Ansible's workers start their own sessions and each v3 tool runs in its own session too, so
nothing here uses process groups: processes are found by walking /proc from the ansible-playbook
pid. A host's processes (its module and tool, found by their V3VEE_HOST_CONF) are stopped with
SIGSTOP as soon as that host is at its point; when every host of the round is there, the whole
tree is stopped and then killed with SIGKILL.

Many simulated hosts (one per operation and slice of its kill points) run in one playbook, so a
round of ansible-playbook runs serves them all: playbook A re-runs the task killed last round,
gathers v3vee_facts and brings each host back to the operation's starting state; playbook B runs
the operation and is killed. Round 0 runs B to the end: the uninterrupted baseline.
"""
import fcntl
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import namedtuple

import yaml

from conftest import TARGETS, ansible_bin, ansible_env

HANG = 120                 # a held tool sleeps this long; it is killed long before
REACH_TIMEOUT = 240        # a point not reached by then is a failure
RERUN_LOCK_TIMEOUT = 5     # the re-run fails if the killed run left the lock taken this long
MAX_POINTS_PER_HOST = 6    # more kill points than this: the operation runs on several hosts
MODULES = ('v3vee_vm', 'v3vee_vms', 'v3vee_inventory', 'v3vee_memory', 'v3vee_checkpoint')
OPTIONS = {
    'v3vee_checkpoint': ('name', 'path', 'state', 'force', 'lock_timeout'),
    'v3vee_vm': ('name', 'config', 'state', 'force', 'lock_timeout'),
    'v3vee_vms': ('vms', 'exclusive', 'force', 'lock_timeout'),
    'v3vee_inventory': ('vms', 'adopt', 'reconcile', 'recover', 'gui_export', 'force', 'lock_timeout'),
    'v3vee_memory': ('total_mb', 'lock_timeout'),
}
# Drift that means "the inventory does not match /proc" (not_desired_state is intent vs reality).
INVENTORY_DRIFT = frozenset(['slot_gone', 'slot_reused', 'relinked', 'duplicate_names', 'state_changed',
                             'broken_slot'])
GUEST_XML = '<vm class="PC">\n  <memory opt_tag="mem">128</memory>\n  <cores count="1"><core/></cores>\n</vm>\n'
CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'callback_plugins')

Point = namedtuple('Point', 'kind tool nth')   # kind: before, after (tool run nth of tool) or commit


def label(point):
    return 'commit' if point.kind == 'commit' else '%s %s#%d' % (point.kind, point.tool, point.nth)


class Case(object):
    """One operation: the task under test (`action`), what brings the host back to its starting
    state before each kill (`prepare`: a task, then `prepare_hook` on the host), what is done once
    (`setup`, `setup_hook`), and the tools an uninterrupted run is expected to run, in order."""

    def __init__(self, name, op, action, tools, prepare=None, setup=None, prepare_hook=None, setup_hook=None,
                 commit=True, gui_file=False):
        self.name, self.op, self.action, self.tools = name, op, action, list(tools)
        self.prepare, self.setup = prepare, setup
        self.prepare_hook, self.setup_hook = prepare_hook, setup_hook
        self.commit, self.gui_file = commit, gui_file

    def points(self):
        points = [Point('commit', None, 0)] if self.commit else []
        seen = {}
        for tool in self.tools:
            seen[tool] = seen.get(tool, 0) + 1
            points += [Point('before', tool, seen[tool]), Point('after', tool, seen[tool])]
        return points


def matrix_cases():
    """Every cell of tests/integration/targets/v3vee_vm_matrix that changes anything."""
    with open(os.path.join(TARGETS, 'v3vee_vm_matrix', 'vars', 'main.yml')) as handle:
        matrix = yaml.safe_load(handle)
    names = {'none': 'not in the kernel', 'error': 'ERROR'}
    cases = []
    for cell in matrix['cells']:
        if not cell['changed']:
            continue
        observed, desired = cell['observed'], cell['desired']
        cases.append(Case(
            'vm_%s_%s' % (observed, desired), 'v3vee_vm %s -> %s' % (names.get(observed, observed), desired),
            ('v3vee_vm', {'name': 'kvm', 'state': desired, 'force': True}),
            ['v3_' + step for step in cell['steps']],
            prepare=('v3vee_vm', {'name': 'kvm', 'config': '{xml}', 'state': matrix['setup_state'][observed],
                                  'force': True}),
            prepare_hook='vm_error' if observed == 'error' else None))
    return cases


def other_cases():
    def vm(name, state, config=True):
        return dict(name=name, state=state, **({'config': '{xml}'} if config else {}))
    return [
        Case('vms_bulk', 'v3vee_vms: 3 VMs -> 3 VMs, exclusive (every wave)',
             ('v3vee_vms', {'vms': [vm('a', 'paused', False), vm('c', 'running', False), vm('d', 'running')],
                            'exclusive': True, 'force': True}),
             ['v3_continue', 'v3_stop', 'v3_free', 'v3_create', 'v3_launch', 'v3_launch', 'v3_pause'],
             prepare=('v3vee_vms', {'vms': [vm('a', 'running'), vm('b', 'paused'), vm('c', 'stopped')],
                                    'exclusive': True, 'force': True})),
        Case('inv_recover', 'v3vee_inventory recover: 2 VMs after a reboot',
             ('v3vee_inventory', {'reconcile': True, 'recover': True}),
             ['v3_create', 'v3_create', 'v3_launch', 'v3_launch', 'v3_pause'],
             setup=('v3vee_vms', {'vms': [vm('r1', 'running'), vm('r2', 'paused')]}), prepare_hook='reboot'),
        Case('inv_gui_export', 'v3vee_inventory recover + gui_export',
             ('v3vee_inventory', {'reconcile': True, 'recover': True, 'gui_export': '{work}/virtual_machines_list.txt'}),
             ['v3_create', 'v3_launch'],
             setup=('v3vee_vms', {'vms': [vm('g1', 'running')]}), prepare_hook='reboot', gui_file=True),
        Case('inv_adopt', 'v3vee_inventory adopt: 2 command-line VMs',
             ('v3vee_inventory', {'adopt': [{'name': 'h1', 'config': '{xml}'}, {'name': 'h2', 'config': '{xml}'}]}),
             [],
             prepare=('v3vee_inventory', {'vms': [{'name': 'h1', 'state': 'absent'}, {'name': 'h2', 'state': 'absent'}],
                                          'force': True}),
             setup_hook='create_by_hand'),
        Case('ck_save', 'v3vee_checkpoint save of a running VM',
             ('v3vee_checkpoint', {'name': 'k1', 'path': '{work}/ckpt/k1'}), ['v3_save'],
             setup=('v3vee_vm', vm('k1', 'running')),
             prepare=('v3vee_checkpoint', {'name': 'k1', 'path': '{work}/ckpt/k1', 'state': 'absent'})),
        Case('ck_restore', 'v3vee_checkpoint restore over the running VM',
             ('v3vee_checkpoint', {'name': 'k2', 'path': '{work}/ckpt/k2', 'state': 'restored', 'force': True}),
             ['v3_stop', 'v3_free', 'v3_create', 'v3_load', 'v3_launch'],
             setup=('v3vee_vm', vm('k2', 'running')),
             prepare=('v3vee_checkpoint', {'name': 'k2', 'path': '{work}/ckpt/k2'})),
        Case('mem_grow', 'v3vee_memory grow: 3 chunks', ('v3vee_memory', {'total_mb': 1408}), ['v3_mem'] * 3,
             prepare=('v3vee_memory', {'total_mb': 1024}), commit=False),
        Case('mem_shrink', 'v3vee_memory shrink: 3 chunks', ('v3vee_memory', {'total_mb': 1024}), ['v3_mem'] * 3,
             prepare=('v3vee_memory', {'total_mb': 1408}), commit=False),
    ]


def all_cases():
    return matrix_cases() + other_cases()


# ---- processes ---------------------------------------------------------------------------------

def proc_table():
    """pid -> (ppid, state) of every process."""
    table = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                data = handle.read()
        except OSError:
            continue
        fields = data[data.rindex(')') + 2:].split()   # the command name may hold spaces and ')'
        table[int(entry)] = (int(fields[1]), fields[0])
    return table


def descendants(root, table):
    children = {}
    for pid, (ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def signal_all(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def freeze(roots):
    """SIGSTOP `roots` and everything under them, again until nothing new appears (a process may
    fork between the walk and its stop). Returns every pid stopped."""
    stopped = set()
    while True:
        table = proc_table()
        tree = set(pid for pid in roots if pid in table)
        for pid in list(tree):
            tree.update(descendants(pid, table))
        new = tree - stopped
        if not new:
            return stopped
        signal_all(sorted(new), signal.SIGSTOP)
        stopped |= new


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            data = handle.read()
    except OSError:
        return False
    return data[data.rindex(')') + 2] != 'Z'


def environ_has(pid, item):
    try:
        with open('/proc/%d/environ' % pid, 'rb') as handle:
            return item in handle.read().split(b'\0')
    except OSError:
        return False


# ---- one simulated host ------------------------------------------------------------------------

class Host(object):
    def __init__(self, case, name, points, work):
        self.case, self.name, self.points, self.work = case, name, points, work
        self.sim = os.path.join(work, 'sim')
        self.conf = os.path.join(work, 'host.conf')
        self.db = os.path.join(work, 'lib', 'inventory.db')
        self.xml = os.path.join(work, 'guest.xml')
        self.next = 0              # index of the next kill point
        self.killed = None         # the point killed in the last round: its re-run is due
        self.baseline_due = False
        self.baseline = None
        self.results = []          # per kill point: {'point', 'failures', 'rerun_s'}
        self.before_records = None
        self.kmsg_offset = 0
        self.holder = None
        self.frozen = set()
        self.reached = None

    def args(self, spec, **extra):
        """(module, arguments) of a task spec, with {xml} and {work} filled in for this host."""
        module, args = spec

        def fill(value):
            if isinstance(value, str):
                return value.format(xml=self.xml, work=self.work)
            if isinstance(value, list):
                return [fill(v) for v in value]
            if isinstance(value, dict):
                return dict((k, fill(v)) for k, v in value.items())
            return value
        args = fill(args)
        args.update(extra)
        return module, args

    def tool(self, *argv, **kwargs):
        proc = subprocess.run([os.path.join(self.sim, 'bin', argv[0])] + list(argv[1:]), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=False, **kwargs)
        if proc.returncode != 0:
            raise RuntimeError('%s: %s failed: %s' % (self.name, ' '.join(argv), proc.stdout))
        return proc.stdout

    def guests(self):
        with open(os.path.join(self.sim, 'proc', 'v3vee', 'v3-guests')) as handle:
            return [line.split('\t') for line in handle.read().splitlines() if line]

    def hook(self, which):
        if which == 'reboot':
            self.tool('v3sim', 'reboot')
        elif which == 'vm_error':
            slot = [line[1] for line in self.guests() if line[0] == 'kvm'][0].rsplit('v3-vm', 1)[1]
            self.tool('v3sim', 'vm-error', slot)
        elif which == 'create_by_hand':
            for name in ('h1', 'h2'):
                self.tool('v3_create', '-b', self.xml, name, cwd=self.work)

    def records(self):
        """The inventory's rows, read-only (also proves the file is a readable database)."""
        if not os.path.exists(self.db):
            return []
        conn = sqlite3.connect('file:%s?mode=ro' % self.db, uri=True, timeout=0)
        try:
            if conn.execute('PRAGMA quick_check').fetchone()[0] != 'ok':
                raise RuntimeError('inventory %s fails quick_check' % self.db)
            return [tuple(row) for row in conn.execute('SELECT * FROM vms ORDER BY name')]
        finally:
            conn.close()

    def faults(self):
        with open(os.path.join(self.sim, 'state', 'faults.json')) as handle:
            return json.load(handle)

    def kmsg(self):
        with open(os.path.join(self.sim, 'kmsg.log')) as handle:
            handle.seek(self.kmsg_offset)
            return handle.read()

    # -- holding the run at its point ----------------------------------------------------------
    def arm(self, point):
        """Hold the next run of the operation at `point`."""
        self.kmsg_offset = os.path.getsize(os.path.join(self.sim, 'kmsg.log'))
        self.reached, self.frozen = None, set()
        if point.kind == 'commit':
            self.holder = subprocess.Popen([sys.executable, '-c', HOLDER, self.db], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, universal_newlines=True)
            if self.holder.stdout.readline().strip() != 'held':
                raise RuntimeError('%s: could not hold the inventory %s' % (self.name, self.db))
            return
        if point.nth > 1:
            self.tool('v3sim', 'fault', 'add', point.tool, 'hang', '--count', str(point.nth - 1))
        self.tool('v3sim', 'fault', 'add', point.tool, 'hang', '--seconds', str(HANG),
                  *(['--after-acting'] if point.kind == 'after' else []))

    def at_point(self, point):
        """The pid held at the point (the tool, or True for the commit), or None."""
        if point.kind == 'commit':
            return True if commit_waiting(self.db) else None
        match = re.search(r'v3sim fault injection: %s hangs %g s %s acting \(pid (\d+)\)' % (point.tool, HANG, point.kind),
                          self.kmsg())
        return int(match.group(1)) if match else None

    def release(self):
        if self.holder is not None:
            self.holder.stdin.close()
            self.holder.wait(timeout=30)
            self.holder = None


# A reader that holds the inventory database (shared lock) until its stdin closes: the module's
# COMMIT then waits for its exclusive lock, with its changes journalled.
HOLDER = '''import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN")
conn.execute("SELECT count(*) FROM vms").fetchone()
print("held", flush=True)
sys.stdin.read()
'''


def commit_waiting(db):
    """A module's COMMIT is waiting: it holds the pending lock, so a new reader is refused."""
    try:
        conn = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=0)
        try:
            conn.execute('SELECT count(*) FROM vms').fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        return 'locked' in str(exc)
    return False


def facts_view(facts):
    return sorted((vm['name'], vm['category'], vm['state'], vm.get('desired_state'), sorted(vm['drift']),
                   [(c['path'], c['exists']) for c in vm.get('checkpoints') or []])
                  for vm in facts['vms'])


# ---- rounds ------------------------------------------------------------------------------------

class Harness(object):
    def __init__(self, work, template, cases):
        self.work, self.template = work, template
        self.hosts = []
        for case in cases:
            points = case.points()
            shards = max(1, -(-len(points) // MAX_POINTS_PER_HOST))
            for shard in range(shards):
                name = case.name if shards == 1 else '%s_%d' % (case.name, shard + 1)
                self.hosts.append(Host(case, name, points[shard::shards], os.path.join(work, name)))
        self.playbooks = 0
        self.seconds = 0.0
        self.errors = []           # a host whose uninterrupted run is not as expected: its points are not run
        self.broken = set()
        self.a_out = None          # the output of the last playbook A (for failure messages)

    # -- ansible-playbook ----------------------------------------------------------------------
    def env(self, log):
        env = ansible_env()
        env.update({
            'ANSIBLE_CALLBACK_PLUGINS': CALLBACKS, 'ANSIBLE_CALLBACKS_ENABLED': 'kill_log', 'V3VEE_KILL_LOG': log,
            'ANSIBLE_FORKS': str(max(5, len(self.hosts))),
            # A killed run leaves Ansible's temporary files: in the test's directory, not in ~/.ansible.
            'ANSIBLE_REMOTE_TMP': os.path.join(self.work, 'ansible-tmp'),
            'ANSIBLE_LOCAL_TEMP': os.path.join(self.work, 'ansible-local'),
        })
        return env

    def inventory(self, groups, hostvars):
        hosts = set(name for members in groups.values() for name in members)
        return {'all': {
            'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable},
            'hosts': dict((name, hostvars[name]) for name in sorted(hosts)),
            'children': dict((group, {'hosts': dict((name, None) for name in members)})
                             for group, members in groups.items()),
        }}

    def start(self, tag, playbook, groups, hostvars):
        base = os.path.join(self.work, tag)
        with open(base + '.inventory.yml', 'w') as handle:
            json.dump(self.inventory(groups, hostvars), handle)
        out = open(base + '.out', 'w')
        log = base + '.jsonl'
        open(log, 'w').close()
        self.playbooks += 1
        proc = subprocess.Popen([ansible_bin('ansible-playbook'), '-i', base + '.inventory.yml', playbook],
                                env=self.env(log), stdout=out, stderr=subprocess.STDOUT, cwd=self.work)
        out.close()
        return proc, log, base + '.out'

    @staticmethod
    def results(log):
        out = {}
        with open(log) as handle:
            for line in handle:
                entry = json.loads(line)
                out[(entry['host'], entry['task'])] = entry
        return out

    # -- the run -------------------------------------------------------------------------------
    def run(self):
        started = time.time()
        self.write_playbooks()
        for host in self.hosts:
            copy_host(self.template, host.work)
            with open(host.xml, 'w') as handle:
                handle.write(GUEST_XML)
        rnd = 0
        while True:
            due = [h for h in self.hosts if h.killed is not None or h.baseline_due]
            acting = [h for h in self.hosts if h.name not in self.broken and h.next < len(h.points)
                      and (rnd == 0 or h.baseline_due or h.baseline is not None)]
            if rnd and not due and not acting:
                break
            results = self.playbook_a(rnd, due, acting)
            for host in due:
                self.check(host, results)
            for host in acting:
                if host.name not in self.broken:
                    self.ready(host, rnd, results)
            acting = [h for h in acting if h.name not in self.broken]
            if acting:
                self.playbook_b(rnd, acting)
            rnd += 1
        self.seconds = time.time() - started
        return self

    def playbook_a(self, rnd, due, acting):
        groups, hostvars = {}, {}
        for host in set(due) | set(acting):
            hostvars[host.name] = {'work_dir': host.work}
        for phase in ('rerun', 'setup', 'prepare'):
            for module in MODULES:
                groups['%s_%s' % (phase, module)] = []
        groups['facts'] = [h.name for h in due]
        for host in due:
            if host.killed is not None:
                module, args = host.args(host.case.action, lock_timeout=RERUN_LOCK_TIMEOUT)
                groups['rerun_' + module].append(host.name)
                hostvars[host.name]['rerun_args'] = args
        for host in acting:
            for phase, spec in (('setup', host.case.setup if rnd == 0 else None), ('prepare', host.case.prepare)):
                if spec is not None:
                    module, args = host.args(spec)
                    groups['%s_%s' % (phase, module)].append(host.name)
                    hostvars[host.name]['%s_args' % phase] = args
        if not any(groups.values()):
            self.a_out = None
            return {}
        proc, log, out = self.start('round%02d-a' % rnd, self.playbook_a_path, groups, hostvars)
        proc.wait()
        self.a_out = out
        return self.results(log)

    def ready(self, host, rnd, results):
        """After playbook A: the host is in the operation's starting state; hold the next run."""
        problems = [e for (name, task), e in results.items() if name == host.name and task in ('setup', 'prepare')
                    and e['status'] != 'ok']
        if problems:
            self.fail(host, 'preparing failed: %s' % problems[0]['result'].get('msg'), self.a_out)
            return
        if rnd == 0 and host.case.setup_hook:
            host.hook(host.case.setup_hook)
        if host.case.prepare_hook:
            host.hook(host.case.prepare_hook)
        host.before_records = host.records()
        if rnd:
            host.arm(host.points[host.next])

    def playbook_b(self, rnd, acting):
        groups = {'action': [h.name for h in acting]}
        hostvars = {}
        for host in acting:
            module, args = host.args(host.case.action)
            hostvars[host.name] = {'work_dir': host.work, 'action_module': module, 'action_args': args}
        proc, log, out = self.start('round%02d-b' % rnd, self.playbook_b_path, groups, hostvars)
        if rnd == 0:
            proc.wait()
            results = self.results(log)
            for host in acting:
                self.baseline_run(host, results.get((host.name, 'action')), out)
            return
        deadline = time.time() + REACH_TIMEOUT
        pending = list(acting)
        while pending and proc.poll() is None and time.time() < deadline:
            for host in list(pending):
                reached = host.at_point(host.points[host.next])
                if reached is not None:
                    host.reached = reached
                    host.frozen = freeze(self.host_processes(proc.pid, host))
                    pending.remove(host)
            time.sleep(0.2)
        killed = freeze([proc.pid])
        signal_all(killed, signal.SIGKILL)
        proc.wait()
        for host in acting:
            host.release()
        wait_gone(killed)
        results = self.results(log)
        for host in acting:
            self.after_kill(host, host in pending, killed, results, out)

    @staticmethod
    def host_processes(root, host):
        """The module (and tool) processes of `host` under the ansible-playbook `root`."""
        table = proc_table()
        item = b'V3VEE_HOST_CONF=' + host.conf.encode()
        return [pid for pid in descendants(root, table) if environ_has(pid, item)]

    def baseline_run(self, host, entry, out):
        if entry is None or entry['status'] != 'ok':
            self.fail(host, 'the uninterrupted run failed: %s' % (entry and entry['result'].get('msg')), out)
            return
        tools = [os.path.basename(argv[0]) for argv in entry['result'].get('commands', [])]
        if tools != host.case.tools:
            self.fail(host, 'the uninterrupted run ran %s, not %s' % (tools, host.case.tools), out)
            return
        host.baseline_due = True

    def after_kill(self, host, unreached, killed, results, out):
        point = host.points[host.next]
        host.next += 1
        host.killed = point
        failures = []
        if unreached:
            entry = results.get((host.name, 'action'))
            failures.append('the run did not reach the point (%s)' % (
                'it ended: %s' % entry['result'].get('msg', entry['status']) if entry else 'timeout'))
        elif point.kind != 'commit' and host.reached not in host.frozen:
            failures.append('the held tool (pid %s) was not in the process tree' % host.reached)
        left = [pid for pid in killed if alive(pid)]
        if left:
            failures.append('processes of the killed tree still alive: %s' % left)
        # The host lock: free at once (a non-blocking flock succeeds right after the kill).
        lock = host.db + '.lock'
        if os.path.exists(lock):
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:
                failures.append('the host lock %s is still held after the kill' % lock)
            finally:
                os.close(fd)
        # The killed run committed nothing: the inventory is readable and exactly as before it.
        try:
            records = host.records()
        except (sqlite3.Error, RuntimeError) as exc:
            failures.append('the inventory cannot be read after the kill: %s' % exc)
        else:
            if records != host.before_records:
                failures.append('the killed run changed the inventory: %s -> %s' % (host.before_records, records))
        if host.faults():
            host.tool('v3sim', 'fault', 'clear')
        host.results.append({'point': point, 'failures': failures, 'rerun_s': None, 'out': out})

    def check(self, host, results):
        """After playbook A: the baseline, or the re-run after a kill and what it left."""
        facts = results.get((host.name, 'facts'))
        facts = facts['result']['ansible_facts']['v3vee'] if facts and facts['status'] == 'ok' else None
        if host.baseline_due:
            host.baseline_due = False
            if facts is None:
                self.fail(host, 'v3vee_facts failed after the uninterrupted run', self.a_out)
                return
            host.baseline = self.outcome(host, facts)
            problems = self.inconsistencies(host, facts)
            if problems:
                self.fail(host, 'the uninterrupted run left: %s' % '; '.join(problems), self.a_out)
            return
        record = host.results[-1]
        host.killed = None
        failures = record['failures']
        rerun = results.get((host.name, 'rerun'))
        if rerun is None or rerun['status'] != 'ok':
            failures.append('the re-run failed: %s' % (rerun and rerun['result'].get('msg')))
        else:
            record['rerun_s'] = rerun['result'].get('duration')
        if facts is None:
            failures.append('v3vee_facts failed after the re-run')
            return
        failures.extend(self.inconsistencies(host, facts))
        outcome = self.outcome(host, facts)
        for key in sorted(outcome):
            if outcome[key] != host.baseline[key]:
                failures.append('%s differs from the uninterrupted run: %s, not %s'
                                % (key, outcome[key], host.baseline[key]))
        record['out'] = self.a_out

    @staticmethod
    def inconsistencies(host, facts):
        problems = ['v3vee_facts problem: %s' % p for p in facts['problems']]
        names = [line[0] for line in host.guests()]
        dups = sorted(set(n for n in names if names.count(n) > 1))
        if dups:
            problems.append('duplicate VMs in /proc: %s' % dups)
        for vm in facts['vms']:
            drift = INVENTORY_DRIFT.intersection(vm['drift'])
            if drift:
                problems.append('%s: the inventory disagrees with /proc (%s)' % (vm['name'], ', '.join(sorted(drift))))
            if vm['category'] == 'not_in_inventory':
                problems.append('%s: in the kernel but not in the inventory' % vm['name'])
        checkpoints = os.path.join(host.work, 'ckpt')
        leftovers = sorted(n for n in os.listdir(checkpoints) if n.startswith('.')) if os.path.isdir(checkpoints) else []
        if leftovers:
            problems.append('a killed save left %s in %s' % (', '.join(leftovers), checkpoints))
        return problems

    @staticmethod
    def outcome(host, facts):
        out = {'vms': facts_view(facts), 'records': facts['inventory']['records'],
               'reserved_bytes': facts['memory']['reserved_bytes']}
        if host.case.gui_file:
            path = host.args(host.case.action)[1]['gui_export']
            with open(path) as handle:
                out['gui_file'] = handle.read()
        return out

    def fail(self, host, msg, out):
        tail = ''
        if out and os.path.exists(out):
            with open(out) as handle:
                tail = handle.read()[-3000:]
        self.errors.append('%s: %s\n%s' % (host.name, msg, tail))
        self.broken.add(host.name)

    # -- playbooks -----------------------------------------------------------------------------
    def write_playbooks(self):
        self.playbook_a_path = os.path.join(self.work, 'a.yml')
        self.playbook_b_path = os.path.join(self.work, 'b.yml')
        plays = []
        for phase in ('rerun', 'facts', 'setup', 'prepare'):
            for module in (MODULES if phase != 'facts' else ('v3vee_facts',)):
                group = 'facts' if phase == 'facts' else '%s_%s' % (phase, module)
                if module == 'v3vee_facts':
                    task = {'name': 'facts', 'v3vee.palacios.v3vee_facts': {'gather_subset': ['vms', 'memory']}}
                else:
                    task = module_task(phase, module, '%s_args' % phase)
                plays.append(play(group, [task]))
        write_yaml(self.playbook_a_path, plays)
        tasks = [dict(module_task('action', module, 'action_args'), when="action_module == '%s'" % module)
                 for module in MODULES]
        # free: a host does not wait for the others' tasks, so every host reaches its point at once
        write_yaml(self.playbook_b_path, [dict(play('action', tasks), strategy='free')])

    # -- figures -------------------------------------------------------------------------------
    def figures(self):
        """Per operation: tool runs, kill points, points failed, and the failures in words."""
        rows = {}
        for host in self.hosts:
            row = rows.setdefault(host.case.op, {'op': host.case.op, 'tools': len(host.case.tools), 'points': 0,
                                                 'failed': 0, 'rerun_s': 0.0, 'failures': []})
            for record in host.results:
                row['points'] += 1
                if record['rerun_s']:
                    row['rerun_s'] = max(row['rerun_s'], record['rerun_s'])
                if record['failures']:
                    row['failed'] += 1
                    row['failures'].append('%s at %s: %s (see %s)' % (host.name, label(record['point']),
                                                                      '; '.join(record['failures']), record['out']))
        order = [h.case.op for h in self.hosts]
        return {'rows': [rows[op] for op in sorted(rows, key=order.index)],
                'playbooks': self.playbooks, 'seconds': round(self.seconds, 1), 'errors': self.errors,
                'expected': sum(len(h.points) for h in self.hosts)}


def module_task(name, module, var):
    args = dict((option, '{{ %s.%s | default(omit) }}' % (var, option)) for option in OPTIONS[module])
    return {'name': name, 'v3vee.palacios.%s' % module: args}


def play(group, tasks):
    return {'name': group, 'hosts': group, 'gather_facts': False,
            'environment': {'V3VEE_HOST_CONF': '{{ work_dir }}/host.conf'}, 'tasks': tasks}


def write_yaml(path, data):
    with open(path, 'w') as handle:
        yaml.safe_dump(data, handle, default_flow_style=False, sort_keys=False)


def wait_gone(pids, timeout=10):
    deadline = time.time() + timeout
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.05)


# ---- simulated hosts ---------------------------------------------------------------------------

TEMPLATE_PLAY = '''- name: Simulated Palacios host (template for the kill tests)
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{python}"
  tasks:
    - name: Simulated Palacios host
      ansible.builtin.include_role:
        name: v3vee.palacios.simulator
      vars:
        simulator_root: "{work}/sim"
        simulator_host_conf_path: "{work}/host.conf"
        simulator_inventory_path: "{work}/lib/inventory.db"
        simulator_profile: false
        simulator_reserve_mb: 1024
        simulator_features: [checkpoint]
'''


def make_template(work):
    """One simulated host made by the simulator role (with 1024 MB reserved, restored at boot);
    copy_host() clones it for every host of a test."""
    playbook = os.path.join(work, 'template.yml')
    with open(playbook, 'w') as handle:
        handle.write(TEMPLATE_PLAY.format(python=sys.executable, work=work))
    proc = subprocess.run([ansible_bin('ansible-playbook'), '-i', 'localhost,', playbook], env=ansible_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, cwd=work,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError('the simulator role failed:\n%s' % proc.stdout[-6000:])
    return work


def copy_host(template, work):
    """The template host under `work`: its files name their own directory (host.conf, the boot
    script), so the template's path is replaced in every file that holds it."""
    shutil.copytree(os.path.join(template, 'sim'), os.path.join(work, 'sim'), symlinks=True)
    shutil.copy2(os.path.join(template, 'host.conf'), os.path.join(work, 'host.conf'))
    old, new = template.encode(), work.encode()
    for directory, _dirs, files in os.walk(work):
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                continue
            with open(path, 'rb') as handle:
                data = handle.read()
            if old in data:
                with open(path, 'wb') as handle:
                    handle.write(data.replace(old, new))


def table(figures_list):
    """The figures of one or more harness runs (tests run side by side) as a Markdown table, then
    the totals."""
    order = [case.op for case in all_cases()]
    rows = sorted((row for figures in figures_list for row in figures['rows']), key=lambda row: order.index(row['op']))
    lines = ['| operation | tool runs | kill points | failed |', '|---|---|---|---|']
    for row in rows:
        lines.append('| %s | %d | %d | %d |' % (row['op'], row['tools'], row['points'], row['failed']))
    points = sum(r['points'] for r in rows)
    totals = (len(rows), sum(r['tools'] for r in rows), points, sum(r['failed'] for r in rows))
    lines.append('| **%d operations** | %d | %d | %d |' % totals)
    lines.append('')
    lines.append('%d kill points, each a killed run and a re-run: %d ansible-playbook runs (%s); slowest re-run '
                 '%.2f s (lock_timeout %d).' % (
                     points, sum(f['playbooks'] for f in figures_list),
                     ', '.join('%.0f s' % f['seconds'] for f in figures_list),
                     max([r['rerun_s'] for r in rows] or [0]), RERUN_LOCK_TIMEOUT))
    return '\n'.join(lines)
