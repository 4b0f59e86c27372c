# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue every module shares: settings, host lock, inventory transaction, error reporting."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time
from contextlib import contextmanager

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore
from ansible_collections.v3vee.palacios.plugins.module_utils.lock import HostLock
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import module_runner
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import Host


class HostSession(object):
    """One module run against one host: holds the lock and the inventory transaction.

    In check mode nothing on the host is created: the inventory is opened read-only (a missing
    one is empty) and the lock is taken only if its directory already exists.
    """

    def __init__(self, module, wait=True, timeout=60):
        self.module = module
        self.started = time.time()
        self.settings = Settings.resolve(module.params)
        self.host = Host(self.settings, module_runner(module), check_mode=module.check_mode,
                         wait=wait, timeout=timeout)
        self.store = InventoryStore(self.settings.inventory_path, readonly=module.check_mode)

    @contextmanager
    def locked(self):
        lock_dir = os.path.dirname(self.settings.lock_path) or '.'
        if self.module.check_mode and not os.path.isdir(lock_dir):
            with self.store.transaction():
                yield self.store
            return
        with HostLock(self.settings.lock_path, self.settings.lock_timeout):
            with self.store.transaction():
                yield self.store

    def exit(self, result):
        for warning in self.host.warnings:
            self.module.warn(warning)
        result['commands'] = self.host.tools.commands
        result['duration'] = round(time.time() - self.started, 3)
        if not self.module._diff:
            result.pop('diff', None)
        if result.get('failed'):
            # A run that did its work but must report failures (v3vee_inventory recover goes on past a
            # failing VM): the full result, after the lock and the transaction are released.
            self.module.fail_json(**result)
        self.module.exit_json(**result)

    def fail(self, err):
        for warning in self.host.warnings:
            self.module.warn(warning)
        self.module.fail_json(commands=self.host.tools.commands, **err.fail_kwargs())


def run_module(module, body, wait=True, timeout=60):
    """Run body(session, store) under the lock and transaction; report V3veeError as fail_json."""
    try:
        session = HostSession(module, wait=wait, timeout=timeout)
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())
    try:
        with session.locked() as store:
            result = body(session, store)
    except V3veeError as err:
        session.fail(err)
    session.exit(result)
