# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live migration primitives: receive a VM into a fresh VM (v3_receive), send a running VM
(v3_send), over Palacios' network keyed stream (KEYED_STREAM net:a:<ip>:<port> listens on every
address, net:c:<ip>:<port> connects; spec 7, observed 12).

Both tools block in the kernel (accept, connect, transfer) and exit 255 on failure without a
reason; v3_send leaves the source paused when it worked. What moved is verified in
v3-guests-details (the vcore registers), a failure is explained from the kernel log.

Locking: a receive holds the host lock to check and create the VM, lets it go while v3_receive
waits for the sender (up to `timeout`: other runs on the host - facts, other VMs - are not held
up behind a listener that may wait minutes), and takes it again to verify, launch and record, or
to free what it made. While it waits the VM is recorded as stopped, so other runs see a managed
VM rather than an unknown one. A send holds the source host's lock throughout: it is short (the
receiver is already listening) and nothing may touch the source VM meanwhile.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import socket

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.facts import vcore_facts
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import GuestConfigs
from ansible_collections.v3vee.palacios.plugins.module_utils.kmsg import collect
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import plan_vm
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import ToolTimeout, in_slot, subprocess_runner
from ansible_collections.v3vee.palacios.plugins.module_utils.view import vm_view

STORE = 'KEYED_STREAM'
DIRECTIONS = ('receive', 'send')
_DOTTED_QUAD = re.compile(r'^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$')
ADVICE_CHECKPOINT = 'Move the VM with a checkpoint instead (role v3vee.palacios.migrate, migrate_method: checkpoint).'
# Kernel log messages of a failed send/receive (linux_module/iface-keyed-stream.c, vm.c,
# vmm_checkpoint.c) -> what they mean, most specific first.
KERNEL_REASONS = (
    (re.compile(r'Unhandled ctrl cmd: 3[45]$'),
     'Palacios on this host was built without LIVE_MIGRATION (the kernel does not handle the migration ioctl). '
     + ADVICE_CHECKPOINT),
    (re.compile(r'Send msg error -14$|Key mismatch in open_key_net'),
     "Palacios' network keyed stream failed the way it does on Linux 3.19 and later (observed: both tools exit 255 "
     "and nothing moves). " + ADVICE_CHECKPOINT),
    (re.compile(r'Cannot currently handle nested paging'),
     'The VM uses nested paging; Palacios receives memory only into VMs with shadow paging.'),
    (re.compile(r'Bind err: '), 'The port is in use on the receiving host.'),
    (re.compile(r'Send msg error -'),
     'Nothing accepted the connection (is v3_receive listening there? start the receive first).'),
    (re.compile(r'Unable to open key for reading on net_stream'),
     'The first connection to the port closed before a stream came: Palacios takes the first connection as the '
     'stream, so never probe the port by connecting to it.'),
)


class MigrationError(V3veeError):
    """A failed send or receive: which step failed and the steps run (or tried) so far."""

    def __init__(self, msg, failed_step, steps, cause=None, vm=None):
        keys = ('tool', 'argv', 'rc', 'stdout', 'stderr', 'observed')
        super(MigrationError, self).__init__(msg, **dict((key, getattr(cause, key, None)) for key in keys))
        self.failed_step = failed_step
        self.steps = list(steps)
        self.vm = vm

    def fail_kwargs(self):
        out = super(MigrationError, self).fail_kwargs()
        out.update(failed_step=self.failed_step, steps=self.steps)
        if self.vm is not None:
            out['vm'] = self.vm
        return out


def check_endpoint(address, port):
    """Palacios parses the address with in_aton (a dotted quad; names are not resolved) and the
    port with simple_strtol."""
    match = _DOTTED_QUAD.match(address or '')
    if not match or any(int(part) > 255 for part in match.groups()):
        raise V3veeError('address %r must be an IPv4 address (a.b.c.d): Palacios\' network keyed stream parses it '
                         'with in_aton and does not resolve host names.' % (address,))
    if not 1 <= port <= 65535:
        raise V3veeError('port must be between 1 and 65535, got %d.' % port)


def stream_url(direction, address, port):
    return 'net:%s:%s:%d' % ('a' if direction == 'receive' else 'c', address, port)


def port_free(port):
    """The receiver binds INADDR_ANY:port without SO_REUSEADDR (accept_once); fail here, before
    any tool runs, if that bind would fail."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(('0.0.0.0', port))
    except (IOError, OSError) as exc:
        raise V3veeError('Port %d cannot be listened on here (%s); Palacios would fail the receive with "Bind err". '
                         'Choose a free port.' % (port, exc.strerror or exc))
    finally:
        probe.close()


def kernel_reason(settings, notice):
    """(what the kernel log says went wrong or None, this run's Palacios lines): the lines from the
    last `notice` (the ioctl's "Sending/Receiving (live-migrating) Guest to ..." line) on; an
    unhandled ioctl logs no notice, so the newest line counts too."""
    found = collect(subprocess_runner, count=40, kernel_log=settings.kernel_log)
    lines, messages = found['lines'], found['messages']
    start = len(messages) - 1
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]['message'].startswith(notice):
            start = index
            break
    recent = messages[max(start, 0):]
    for pattern, text in KERNEL_REASONS:
        if any(pattern.search(message['message']) for message in recent):
            return text, lines[max(start, 0):]
    return None, lines[max(start, 0):]


def _vcores(host, slot):
    details = host.reader.snapshot(details=True).details or {}
    return vcore_facts(details[slot]) if slot in details else []


def _explain(host, what, notice):
    reason, lines = kernel_reason(host.settings, notice)
    text = ' %s' % reason if reason else ' The kernel log does not say why: dmesg | grep palacios.'
    return what + text, lines


def receive(session, module, definition, shape, inline):
    """Create VM `name` from `definition`, receive it, verify its vcores, launch and record it.
    On any failure the VM made here is freed and nothing stays recorded."""
    params = module.params
    host, name, port = session.host, params['name'], params['port']
    url = stream_url('receive', params['address'], port)
    configs = GuestConfigs(session.settings.inventory_path, check_mode=module.check_mode)
    steps = []
    with session.locked() as store:
        snap = host.snapshot(memory=True)
        same = [entry for entry in snap.guests if entry.name == name]
        if same or store.get(name) is not None:
            raise V3veeError('VM %r already exists on this host (%s); a VM is received into a fresh VM of its own. '
                             'Take the other one away first (v3vee.palacios.v3vee_vm state: absent).'
                             % (name, ', '.join(e.device for e in same) or 'in the inventory'))
        plan = plan_vm(name, 'none', None, definition, 'running')
        host.preflight(name, plan, snap, shape)
        for tool in ('v3_receive', 'v3_stop', 'v3_free'):
            host.tools.which(tool)
        port_free(port)
        if module.check_mode:
            entry = host.predict(name, plan, snap, None, shape)
            after = vm_view(name, dict(definition, desired_state='running'), entry)
            return {'changed': True, 'vm': after, 'steps': ['create', 'receive', 'launch'], 'url': url,
                    'cores': [], 'diff': {'before': vm_view(name, None, None), 'after': after}}
        if inline is not None:
            configs.write(inline)
        try:
            slot = host.converge(store, name, 'stopped', definition=definition, shape=shape)['vm']['slot']
        except V3veeError as err:
            raise _undone(session, store, configs, inline, name, 'create', ['create'], err.msg, err)
        steps.append('create')
        fresh = _vcores(host, slot)
        if any(core['paging'] != 'shadow' for core in fresh):
            raise _undone(session, store, configs, inline, name, 'create', steps,
                          'VM %r was created with nested paging (v3-guests-details); Palacios receives memory only '
                          'into VMs with shadow paging, so v3_receive was not run.' % name)
    steps.append('receive')
    device = host.executor.device(slot)
    try:
        result = host.tools.run('v3_receive', [device, STORE, url], params['timeout'])
        failure = None
    except ToolTimeout as err:
        result = None
        failure = err
        failure.msg = ('Nobody sent VM %r to port %d within %ss: v3_receive was killed (%s).'
                       % (name, port, params['timeout'], err.killed_by or 'it could not be killed'))
    with session.locked() as store:
        if failure is None and result.rc != 0:
            msg, lines = _explain(host, 'v3_receive of VM %r failed (exit %s, "%s").' % (
                name, result.rc, (result.stdout.strip().splitlines() or ['no output'])[-1]),
                'Receiving (live-migrating) Guest to %s:%s' % (STORE, url))
            failure = V3veeError(msg, tool='v3_receive', argv=result.argv, rc=result.rc, stdout=result.stdout,
                                 stderr=result.stderr, observed=lines)
        received = _vcores(host, slot) if failure is None else []
        if failure is None:
            try:
                entry = in_slot(host.reader.guests(), slot, name)
            except V3veeError as err:  # the slot now holds another VM: ours is gone
                entry, failure = None, err
        if failure is None:
            if entry is None or entry.state != 'stopped' or received == fresh:
                failure = V3veeError('v3_receive of VM %r exited 0 but %s; nothing was received.' % (
                    name, 'the vcores still show a fresh VM' if entry is not None and entry.state == 'stopped'
                    else host.describe(name, entry)), tool='v3_receive', argv=result.argv, rc=result.rc)
        if failure is not None:
            raise _undone(session, store, configs, inline, name, 'receive', steps, failure.msg, failure)
        try:
            launched = host.converge(store, name, 'running')
        except V3veeError as err:
            raise _undone(session, store, configs, inline, name, 'launch', steps + ['launch'], err.msg, err)
        steps.append('launch')
    return {'changed': True, 'vm': launched['vm'], 'steps': steps, 'url': url, 'cores': received,
            'diff': {'before': vm_view(name, None, None), 'after': launched['vm']}}


def _undone(session, store, configs, inline, name, failed_step, steps, msg, cause=None):
    """Free the VM this receive made (whatever state it reached), drop its record and its inline
    config; the MigrationError to raise says so (or what could not be undone)."""
    host = session.host
    record = store.get(name)
    try:
        if record is not None or host.locate(name, None, host.snapshot()) is not None:
            host.converge(store, name, 'absent', force=True)
        configs.prune([record.get('config') if record else None, inline.path if inline else None],
                      [r.get('config') for r in store.all()])
        outcome = 'The VM created for it was freed and nothing is recorded.'
    except V3veeError as err:
        outcome = 'Freeing the VM created for it failed too: %s' % err
    return MigrationError('%s %s' % (msg, outcome), failed_step, steps, cause)


def send(session, module):
    """Send running VM `name`; verify it is paused afterwards. On failure make sure it runs (continue
    it if the send left it paused) and say which step failed."""
    params = module.params
    host, name = session.host, params['name']
    url = stream_url('send', params['address'], params['port'])
    with session.locked() as store:
        snap = host.snapshot()
        record = store.get(name)
        if record is None:
            raise V3veeError('VM %r is not in this host\'s inventory; its record moves with it. Record it first '
                             '(v3vee.palacios.v3vee_vm state: present with its config).' % name)
        entry = host.locate(name, record, snap)
        host.refuse_unplannable(name, snap, entry)
        if entry is None or entry.state != 'running':
            raise V3veeError('VM %r is %s; v3_send moves a running VM.' % (name, entry.state if entry else 'not in the kernel'))
        for tool in ('v3_send', 'v3_continue'):
            host.tools.which(tool)
        before = vm_view(name, record, entry)
        if module.check_mode:
            after = vm_view(name, dict(record, observed_state='paused'), entry._replace(state='paused'))
            return {'changed': True, 'vm': after, 'steps': ['send'], 'url': url, 'cores': [],
                    'diff': {'before': before, 'after': after}}
        try:
            result = host.tools.run('v3_send', [host.executor.device(entry.index), STORE, url], params['timeout'])
            failure = None
        except ToolTimeout as err:
            result, failure = None, err
        if failure is None:
            # Exit 0 is checked in /proc (the VM paused); 255 needs no wait: the ioctl has returned.
            if result.rc == 0 and host.executor.poll_until(lambda: _state(host, entry.index, name) == 'paused'):
                done = host.converge(store, name, 'present')
                return {'changed': True, 'vm': done['vm'], 'steps': ['send'], 'url': url,
                        'cores': _vcores(host, entry.index), 'diff': {'before': before, 'after': done['vm']}}
            msg, lines = _explain(host, 'v3_send of VM %r failed (exit %s, "%s").' % (
                name, result.rc, (result.stdout.strip().splitlines() or ['no output'])[-1]),
                'Sending (live-migrating) Guest to %s:%s' % (STORE, url))
            failure = V3veeError(msg, tool='v3_send', argv=result.argv, rc=result.rc, stdout=result.stdout,
                                 stderr=result.stderr, observed=lines)
        return _source_back(host, store, name, entry.index, failure)


def _state(host, slot, name):
    entry = in_slot(host.reader.guests(), slot, name)
    return entry.state if entry is not None else None


def _source_back(host, store, name, slot, failure):
    """After a failed send: the source must run again (continue it if the send left it paused)."""
    try:
        state = _state(host, slot, name)
    except V3veeError as err:  # the slot now holds another VM
        raise MigrationError('%s %s' % (failure.msg, err.msg), 'send', ['send'], failure)
    steps = ['send']
    if state == 'paused':
        steps.append('continue')
        try:
            host.converge(store, name, 'running')
        except V3veeError as err:
            raise MigrationError('%s The send left VM %r paused and continuing it failed: %s' % (failure.msg, name, err),
                                 'continue', steps, failure)
        state = 'running'
    else:
        host.converge(store, name, 'present')
    outcome = ('The source VM %r is running again.' % name if 'continue' in steps else
               'The source VM %r is still %s.' % (name, state or 'gone from the kernel'))
    raise MigrationError('%s %s' % (failure.msg, outcome), 'send', steps, failure)
