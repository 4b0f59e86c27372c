# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue every module shares: settings, host lock, inventory transaction, error reporting."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time
from contextlib import contextmanager

from ansible.module_utils.basic import _load_params

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore
from ansible_collections.v3vee.palacios.plugins.module_utils.lock import HostLock
from ansible_collections.v3vee.palacios.plugins.module_utils.memory import read_offline_file
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import Host


# Options users of other VM modules (community.libvirt, community.proxmox) reach for. A Palacios
# VM is sized by its XML config; config_options overrides the elements that carry an opt_tag.
SIZING_OPTIONS = {
    'memory': 'memory', 'mem': 'memory', 'memory_mb': 'memory', 'mem_mb': 'memory', 'ram': 'memory',
    'cores': 'cores', 'vcores': 'cores', 'cpus': 'cores', 'vcpus': 'cores', 'cpu': 'cores',
}
SIZING_HINTS = {
    'memory': 'the memory comes from the config\'s <memory>: override it with config_options: {mem: %s}, which '
              'sets the element with opt_tag="mem" (as in <memory opt_tag="mem">128</memory>)',
    'cores': 'the vcores come from the config\'s <cores count>: override them with config_options: {<tag>: %s} '
             'for a config element with opt_tag="<tag>" that holds the count',
}


def misplaced_options(spec):
    """The raw parameters among SIZING_OPTIONS that `spec` does not have, read before AnsibleModule
    (which rejects them with a bare "Unsupported parameters"), so the module can say where they belong."""
    try:
        raw = _load_params()
    except Exception:  # no parameters to read (not run by Ansible): AnsibleModule reports it
        return {}
    if not isinstance(raw, dict):
        return {}
    return dict((key, raw[key]) for key in sorted(raw) if key in SIZING_OPTIONS and key not in spec)


def misplaced_message(module_name, misplaced):
    return 'Unsupported parameter%s for %s: %s. A Palacios VM is sized by its XML config (option config): %s.' % (
        's' if len(misplaced) > 1 else '', module_name, ', '.join(misplaced),
        '; '.join(SIZING_HINTS[SIZING_OPTIONS[key]] % (value,) for key, value in misplaced.items()))


class HostSession(object):
    """One module run against one host: holds the lock and the inventory transaction.

    In check mode nothing on the host is created: the inventory is opened read-only (a missing
    one is empty) and the lock is taken only if its directory already exists.
    """

    def __init__(self, module, wait=True, timeout=60):
        self.module = module
        self.started = time.time()
        self.settings = Settings.resolve(module.params)
        self.host = Host(self.settings, subprocess_runner, check_mode=module.check_mode,
                         wait=wait, timeout=timeout)
        self.store = InventoryStore(self.settings.inventory_path, readonly=module.check_mode)
        self.host_before = None
        self.lock_wait = 0.0
        self.host.tools.before_first_run = self._remember_host

    def host_state(self):
        """What a tool can change on the host, as /proc and the offline-memory record show it
        (exit codes do not tell whether a tool changed anything)."""
        snap = self.host.reader.snapshot(memory=True)
        return snap.loaded, snap.guests, snap.zones, read_offline_file(self.settings.palacios_dir)

    def _remember_host(self):
        self.host_before = self.host_state()

    def host_changed(self):
        """Whether this run changed the host so far, whatever the module planned: a run that fails
        after a step took effect has changed the host."""
        if self.host_before is None:
            return False
        try:
            return self.host_state() != self.host_before
        except V3veeError:
            return True  # a tool ran and /proc cannot be read back: nothing says the host is unchanged

    @contextmanager
    def locked(self):
        lock_dir = os.path.dirname(self.settings.lock_path) or '.'
        if self.module.check_mode and not os.path.isdir(lock_dir):
            with self.store.transaction():
                yield self.store
            return
        with HostLock(self.settings.lock_path, self.settings.lock_timeout) as lock:
            self.lock_wait = lock.waited
            with self.store.transaction():
                yield self.store

    def exit(self, result, changed):
        for warning in self.store.warnings + self.host.warnings:
            self.module.warn(warning)
        result['commands'] = self.host.tools.commands
        result['duration'] = round(time.time() - self.started, 3)
        result['lock_wait'] = round(self.lock_wait, 3)
        result['changed'] = bool(result.get('changed')) or changed
        if not self.module._diff:
            result.pop('diff', None)
        if result.get('failed'):
            # A run that did its work but must report failures (v3vee_inventory recover goes on past a
            # failing VM): the full result, after the lock and the transaction are released.
            self.module.fail_json(**result)
        self.module.exit_json(**result)

    def fail(self, err, changed):
        for warning in self.store.warnings + self.host.warnings:
            self.module.warn(warning)
        kwargs = err.fail_kwargs()
        kwargs.setdefault('lock_wait', round(self.lock_wait, 3))
        self.module.fail_json(changed=changed, commands=self.host.tools.commands, **kwargs)


def run_module(module, body, wait=True, timeout=60):
    """Run body(session, store) under the lock and transaction; report V3veeError as fail_json.

    changed is also true when the run changed the host or the inventory and then failed."""
    try:
        session = HostSession(module, wait=wait, timeout=timeout)
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())
    host_changed = False
    try:
        with session.locked() as store:
            try:
                result = body(session, store)
            finally:
                # Still under the lock: nobody else has touched the host since.
                host_changed = session.host_changed()
    except V3veeError as err:
        # The inventory's part is known once its transaction ended: records it rolled back changed nothing.
        session.fail(err, host_changed or session.store.changed)
    session.exit(result, host_changed or session.store.changed)
