# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record-only inventory operations, as pure functions over records and the kernel's VM list.

None of them runs a tool: they decide what the inventory should say (the GUI's New VM, Delete
of an inactive VM, Activate of a "not in inventory" VM, Reload, and import of its file).
Each returns the records to write and a report; StagedStore applies them for one run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import os

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.guifile import desired_state, gui_state, slot_of
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import content, new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import definition_of, kernel_state, plan_vm
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import is_broken
from ansible_collections.v3vee.palacios.plugins.module_utils.reconcile import classify, match_record

IMPORT_POLICIES = ('keep', 'replace', 'fail')


class StagedStore(object):
    """The inventory as this run will leave it.

    Reads and writes go to memory (same interface as InventoryStore: get, all, put, delete), so
    every operation of one run sees what the earlier ones decided, in check mode too; flush()
    writes the difference to the real store (inside its transaction) in a real run.
    """

    def __init__(self, store):
        self.store = store
        self.original = dict((r['name'], r) for r in store.all())
        self.records = copy.deepcopy(self.original)

    def get(self, name):
        return copy.deepcopy(self.records.get(name))

    def all(self):
        return [copy.deepcopy(self.records[name]) for name in sorted(self.records)]

    def put(self, record):
        self.records[record['name']] = copy.deepcopy(record)

    def delete(self, name):
        self.records.pop(name, None)

    def changed(self):
        return self.records != self.original

    def flush(self):
        for name in sorted(self.original):
            if name not in self.records:
                self.store.delete(name)
        for name in sorted(self.records):
            if self.records[name] != self.original.get(name):
                self.store.put(self.records[name])
        self.original = copy.deepcopy(self.records)


def link(name, definition, entry, desired, previous):
    """A record for `definition`, linked to the kernel VM `entry` (None: inactive)."""
    if entry is None:
        return new_record(name, definition, desired_state=desired, previous=previous)
    return new_record(name, definition, entry.index, entry.device, entry.state, desired, previous=previous)


def kernel_vm(name, slot, guests):
    """The kernel VM that is `name` (the recorded slot first, else a unique name; never guessed)."""
    return match_record(name, slot, guests)[0]


def define(name, record, definition, guests):
    """Record `name` (the GUI's New VM; v3vee_vm state=present). Linked to the kernel VM of that
    name when there is exactly one, with the kernel's state as the desired state; else inactive.

    Returns (record, drift). An active VM's definition cannot change in the inventory alone: the
    kernel VM was built from the recorded one.
    """
    entry, drift = match_record(name, record.get('slot') if record else None, guests)[:2]
    observed = kernel_state(entry.state) if entry is not None else 'none'
    if record is not None and entry is not None and definition is not None \
            and definition != definition_of(record):
        raise V3veeError('VM %r is active (%s at %s) and its image/config/config_options differ from the '
                         'inventory; the kernel VM was built from the recorded ones, so the record alone '
                         'cannot change. Use v3vee.palacios.v3vee_vm with recreate: true, or deactivate it '
                         'first.' % (name, entry.state, entry.device))
    plan = plan_vm(name, observed, record, definition, 'present')
    return link(name, plan.definition, entry, plan.desired_state, record), drift


def plan_records(items, store, guests, force=False):
    """The `vms` option: records present/absent, in the order given. Writes to `store` (staged)."""
    results = []
    for item in items:
        name = item['name']
        before = store.get(name)
        if item['state'] == 'absent':
            result = {'name': name, 'action': 'unchanged'}
            if before is not None:
                entry = kernel_vm(name, before.get('slot'), guests)
                if entry is not None and not force:
                    raise V3veeError('VM %r is active (%s at %s): removing its record would leave it in the '
                                     'kernel as "not in inventory". Free it first (v3vee.palacios.v3vee_vm '
                                     'state: absent), or set force: true to only forget it.'
                                     % (name, entry.state, entry.device))
                store.delete(name)
                result['action'] = 'removed'
            results.append(result)
            continue
        if before is None and item.get('definition') is None:
            raise V3veeError('VM %r is not in the inventory: give image, config or config_xml to define it.' % name)
        after, drift = define(name, before, item.get('definition'), guests)
        action = 'unchanged'
        if before is None:
            action = 'created'
        elif content(before) != content(after):
            action = 'updated'
        if action != 'unchanged':
            store.put(after)
        results.append({'name': name, 'action': action, 'drift': drift})
    return results


def plan_adopt(items, store, guests):
    """The GUI's Activate of a "not in inventory" VM: record a kernel VM with the image/config it
    was created from. Names with several kernel VMs, or none, are reported and left alone."""
    results = []
    for item in items:
        name = item['name']
        same = [e for e in guests if e.name == name and not is_broken(e)]
        result = {'name': name, 'devices': [e.device for e in same]}
        if store.get(name) is not None:
            result['result'] = 'in_inventory'
        elif not same and any(e.name == name for e in guests):
            result['result'] = 'broken_slot'          # a ghost slot is never adopted (nothing to manage)
        elif not same:
            result['result'] = 'not_in_kernel'
        elif len(same) > 1:
            result['result'] = 'duplicate_names'
        else:
            record = define(name, None, item['definition'], guests)[0]
            store.put(record)
            result['result'] = 'adopted'
        results.append(result)
    return results


def plan_reconcile(store, guests):
    """The GUI's Reload, made permanent: every record is linked to the kernel VM it matches (the
    recorded slot if it still holds that name, else the one VM of that name), or made inactive
    when its slot is gone or holds another VM. Desired states are kept: they are intent."""
    results = []
    for item in classify(store.all(), guests):
        record = item['record']
        if record is None:
            continue
        after = link(item['name'], definition_of(record), item['entry'], record['desired_state'], record)
        changed = content(after) != content(record)
        if changed:
            store.put(after)
        results.append({'name': item['name'], 'category': item['category'], 'drift': item['drift'],
                        'changed': changed, 'device': after['device'], 'state': after['observed_state']})
    return results


def _resolve(path, base_dir):
    # The GUI stored image basenames relative to its working directory, which is also where its
    # relative virtual_machines_list.txt lives: resolve them against the file's directory.
    if not path:
        return None
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


def _differences(record, definition, wanted):
    out = {}
    for key in ('image', 'config'):
        if record.get(key) != definition.get(key):
            out[key] = {'inventory': record.get(key), 'file': definition.get(key)}
    # The file cannot tell "inactive" from "stopped" for a VM without a device: both are 0.
    if gui_state(record.get('desired_state')) != gui_state(wanted):
        out['desired_state'] = {'inventory': record.get('desired_state'), 'file': wanted}
    return out


def plan_import(lines, store, guests, base_dir, policy='keep'):
    """Import parsed GUI lines (guifile.parse). New names become records (linked to the kernel VM
    of that name when the file's dev or a unique name finds it); a name already recorded with a
    different image, config or state is a conflict, resolved by `policy`:

    keep - the record stays as it is (the file has no timestamps, so it cannot show that its line
      is newer; the GUI rewrites the whole file on every change, so the file's mtime cannot either);
    replace - the line wins, except that an active VM's image/config is never changed (the kernel
      VM was built from the recorded one);
    fail - nothing is imported and the run fails, listing every conflict.
    """
    report = {'imported': [], 'replaced': [], 'unchanged': [], 'conflicts': []}
    in_file = set()
    for line in lines:
        in_file.add(line.name)
        definition = {'image': _resolve(line.image, base_dir), 'config': _resolve(line.config, base_dir),
                      'config_options': {}}
        wanted = desired_state(line.dev, line.state)
        record = store.get(line.name)
        if record is None:
            entry = kernel_vm(line.name, slot_of(line.dev), guests)
            store.put(link(line.name, definition, entry, wanted, None))
            report['imported'].append(line.name)
            continue
        diff = _differences(record, definition, wanted)
        if not diff:
            report['unchanged'].append(line.name)
            continue
        conflict = {'line': line.line, 'name': line.name, 'differences': diff, 'resolution': 'kept'}
        report['conflicts'].append(conflict)
        if policy != 'replace':
            continue
        entry = kernel_vm(line.name, record.get('slot'), guests)
        updated = definition_of(record)
        if 'image' in diff or 'config' in diff:
            if entry is not None:
                conflict['reason'] = ('VM is active (%s): its image/config cannot change without re-creating it '
                                      '(v3vee.palacios.v3vee_vm recreate: true)' % entry.device)
                if 'desired_state' not in diff:
                    continue
                conflict['resolution'] = 'state_replaced'
            else:
                if definition['config'] != record.get('config'):
                    updated['config_options'] = {}  # the overrides were for the old XML
                updated.update(image=definition['image'], config=definition['config'])
        desired = wanted if 'desired_state' in diff else record['desired_state']
        store.put(link(line.name, updated, entry, desired, record))
        if conflict['resolution'] == 'kept':
            conflict['resolution'] = 'replaced'
        report['replaced'].append(line.name)
    if policy == 'fail' and report['conflicts']:
        for conflict in report['conflicts']:
            conflict['resolution'] = 'failed'
        raise V3veeError('The GUI file conflicts with the inventory for %s; nothing was imported '
                         '(import_conflict: fail). Set import_conflict to keep or replace.'
                         % '; '.join('%s (line %d: %s)' % (c['name'], c['line'], ', '.join(sorted(c['differences'])))
                                     for c in report['conflicts']),
                         observed=report['conflicts'])
    report['not_in_file'] = sorted(r['name'] for r in store.all() if r['name'] not in in_file)
    return report
