# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one VM: observe -> plan -> execute -> verify -> record.

Used by v3vee_vm for one VM and by v3vee_inventory (recover) for every recorded VM.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import content, new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import STEP_TOOLS, definition_of, kernel_state, plan_vm
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import (
    ProcReader, Snapshot, VmEntry, allocation_size, blocks_needed, broken_message, is_broken)
from ansible_collections.v3vee.palacios.plugins.module_utils.reconcile import (
    BROKEN_SLOT, DUPLICATE_NAMES, RELINKED, SLOT_GONE, SLOT_REUSED, match_record)
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import Executor, Tools, entry_dict
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_definition

STATE_NAMES = {'none': 'inactive', 'error': 'ERROR'}


def record_state(planner_state):
    """Planner state -> the observed_state the inventory stores."""
    return STATE_NAMES.get(planner_state, planner_state)


def create_args(name, definition):
    """argv (after the tool) and cwd for v3_create."""
    if definition.get('image'):
        return [definition['image'], name], None
    options = definition.get('config_options') or {}
    extra = ['%s=%s' % (key, options[key]) for key in sorted(options)]
    # <file filename> is stat()ed relative to v3_create's CWD (5.4): run it in the XML's directory.
    return ['-b', definition['config'], name] + extra, os.path.dirname(definition['config'])


def vm_view(name, record, entry):
    """What modules return for a VM: inventory record + live kernel data."""
    view = {
        'name': name,
        'in_inventory': record is not None,
        'state': entry.state if entry is not None else ('inactive' if record is not None else 'absent'),
        'slot': entry.index if entry is not None else None,
        'device': entry.device if entry is not None else None,
        'vcores': entry.vcores if entry is not None else None,
        'mem_bytes': entry.mem_bytes if entry is not None else None,
        'type': entry.vm_type if entry is not None else None,
        'image': None, 'config': None, 'config_options': {}, 'desired_state': None,
        'created_at': None, 'updated_at': None,
    }
    if record is not None:
        for key in ('image', 'config', 'config_options', 'desired_state', 'created_at', 'updated_at'):
            view[key] = record.get(key)
    return view


class Host(object):
    """One Palacios host as the engine sees it."""

    def __init__(self, settings, runner, check_mode=False, wait=True, timeout=60):
        self.settings = settings
        self.check_mode = check_mode
        self.reader = ProcReader(settings.proc_dir)
        self.tools = Tools(settings, runner)
        self.executor = Executor(self.tools, self.reader, settings.dev_dir, wait=wait, timeout=timeout)
        self.warnings = []
        # Check mode: slot -> the VmEntry a real run would have left there so far (None: freed), so
        # that several converges in one run (v3vee_inventory recover) see each other's predicted
        # VMs, slots and memory, as they would see the real ones.
        self.predicted = {}

    # -- observe ---------------------------------------------------------------------------
    def snapshot(self, memory=False):
        """Read /proc once; wait (bounded) while a VM is in a transitional state (UNKNOWN while resetting).
        A broken slot is not transitional: it stays until a reboot."""
        deadline = time.time() + self.executor.timeout
        while True:
            snap = self.reader.snapshot(memory=memory)
            if all(kernel_state(e.state) is not None or e.state is None or is_broken(e) for e in snap.guests) \
                    or time.time() >= deadline:
                return with_predictions(snap, self.predicted)
            time.sleep(self.executor.poll)

    def locate(self, name, record, snap):
        """Find the kernel VM that is `name` (reconcile.match_record): the recorded slot first, since
        the kernel allows duplicate names; else a unique name. Drift becomes a warning."""
        slot = record.get('slot') if record else None
        entry, drift, same_name = match_record(name, slot, snap.guests)
        if SLOT_REUSED in drift:
            self.warnings.append('Inventory says %r is /dev/v3-vm%d, but that slot now holds %r (slots are '
                                 'reused); the record is corrected.' % (name, slot, snap.by_slot(slot).name))
        if SLOT_GONE in drift:
            self.warnings.append('Inventory says %r is /dev/v3-vm%d, but that slot is empty (freed outside '
                                 'the collection, or the host rebooted); the record is corrected.' % (name, slot))
        if DUPLICATE_NAMES in drift:
            raise V3veeError('The kernel has %d VMs named %r (%s): Palacios allows duplicate names, the '
                             'inventory does not, and guessing could stop the wrong guest. Free the extra '
                             'ones (v3_free <index>) or fix the inventory record\'s device.'
                             % (len(same_name), name, ', '.join(e.device for e in same_name)),
                             observed=[entry_dict(e) for e in same_name])
        if RELINKED in drift:
            self.warnings.append('VM %r found at %s; the record is relinked to it.' % (name, entry.device))
        recorded = snap.by_slot(slot) if slot is not None else None
        if BROKEN_SLOT in drift and recorded is not None and is_broken(recorded):
            self.warnings.append('Inventory says %r is /dev/v3-vm%d; the record is made inactive. %s'
                                 % (name, slot, broken_message(recorded)))
        return entry

    def refuse_unplannable(self, name, snap, entry):
        """Nothing is planned from a broken slot carrying this name (it cannot be freed, only a
        reboot clears it) or from a state still transitional after snapshot()'s wait."""
        for ghost in snap.broken():
            if ghost.name == name:
                raise V3veeError('VM %r cannot be managed now; nothing was run. %s' % (name, broken_message(ghost)),
                                 observed=entry_dict(ghost))
        if entry is not None and entry.state is not None and kernel_state(entry.state) is None:
            raise V3veeError('VM %r is still %s in %s/v3-guests after waiting %ss (Palacios shows UNKNOWN while '
                             'v3_reset runs); nothing was run. Try again when it settles, or raise timeout.'
                             % (name, entry.state, self.settings.proc_dir, self.executor.timeout),
                             observed=entry_dict(entry))

    # -- preflight ---------------------------------------------------------------------------
    def preflight(self, name, plan, snap, entry, shape):
        """Everything a real run would trip over, checked before any tool runs (so check mode
        fails exactly where the real run would)."""
        if not plan.steps:
            return
        if not snap.loaded:
            raise V3veeError('The Palacios kernel module is not loaded (%s/v3-info does not exist). Load it '
                             'first (role v3vee.palacios.palacios_module, or insmod v3vee.ko).'
                             % self.settings.proc_dir)
        for step in set(plan.steps):
            self.tools.which(STEP_TOOLS[step])
        if 'create' not in plan.steps:
            return
        freed = entry is not None and 'free' in plan.steps
        if len(snap.free_slots()) + (1 if freed else 0) < 1:
            raise V3veeError('All 32 Palacios VM slots are in use; free a VM before creating %r.' % name)
        cpus = snap.info['cpus']
        if shape.vcores > cpus:
            raise V3veeError('VM %r asks for %d vcores but the host has %d CPUs; Palacios does not handle '
                             'more vcores than host CPUs cleanly.' % (name, shape.vcores, cpus))
        block = snap.block_size
        need = blocks_needed(shape.mem_bytes, block)
        have = snap.free_blocks()
        if freed and entry.mem_bytes:
            have += blocks_needed(entry.mem_bytes, block)
        if need > have:
            raise V3veeError('Not enough memory reserved for Palacios to create %r: it needs %d MB = %d block(s) '
                             'of %d MB, and the pools have %d free block(s). Reserve more with '
                             'v3vee.palacios.v3vee_memory (or v3_mem -a).'
                             % (name, shape.mem_mb, need, block // 1048576, have))

    def predict(self, name, plan, snap, entry, shape):
        """The kernel entry a real run would leave (check mode)."""
        if not plan.steps:
            return entry
        if plan.final == 'none':
            return None
        if 'create' not in plan.steps:
            return entry._replace(state=record_state(plan.final))
        free = snap.free_slots()
        if entry is not None and 'free' in plan.steps:
            free = sorted(free + [entry.index])  # the lowest free slot is reused (1.1)
        slot = free[0]
        return VmEntry(slot, name, '/dev/v3-vm%d' % slot, record_state(plan.final), shape.vcores,
                       blocks_needed(shape.mem_bytes, snap.block_size), shape.mem_bytes, 'general')

    # -- converge ----------------------------------------------------------------------------
    def converge(self, store, name, desired, definition=None, force=False, recreate=False, shape=None):
        """Bring `name` to `desired`; returns a result dict. Raises V3veeError after recording the truth."""
        snap = self.snapshot(memory=True)
        before_record = store.get(name)
        entry = self.locate(name, before_record, snap)
        if entry is not None and entry.state is None:
            # The 2012 module printed only "name<TAB>device": no state to plan from.
            raise V3veeError('%s/v3-guests has the old 2-field format (no VM states), so the state of %r cannot be '
                             'observed; lifecycle changes need a Palacios module with the 7-field format.'
                             % (self.settings.proc_dir, name), observed=entry_dict(entry))
        self.refuse_unplannable(name, snap, entry)
        observed = kernel_state(entry.state) if entry is not None else 'none'
        plan = plan_vm(name, observed, before_record, definition, desired, force=force, recreate=recreate)
        if 'create' in plan.steps and shape is None:
            shape = check_definition(**plan.definition)  # a recorded definition: re-check its files
        self.preflight(name, plan, snap, entry, shape)
        before = vm_view(name, before_record, entry)

        if self.check_mode:
            after_entry = self.predict(name, plan, snap, entry, shape)
            if plan.steps:
                if entry is not None:
                    self.predicted[entry.index] = None
                if after_entry is not None:
                    self.predicted[after_entry.index] = after_entry
            after_record = self._record(name, plan, before_record, after_entry)
            return self._result(name, plan, before, before_record, after_record, after_entry)

        current = entry
        try:
            for step in plan.steps:
                args = create_args(name, plan.definition) if step == 'create' else None
                current = self.executor.run_step(step, name, current, args)
        except V3veeError as err:
            self.record_truth(store, name, plan, before_record)
            ghosts = [e for e in self.reader.snapshot().broken() if e.name == name]
            if 'create' in plan.steps and ghosts:
                # The pools emptied between the check and v3_create (someone else took the memory).
                raise V3veeError('v3_create of %r crashed the kernel: %s (%s)' % (name, broken_message(ghosts[0]), err.msg),
                                 tool=err.tool, argv=err.argv, rc=err.rc, stdout=err.stdout, stderr=err.stderr,
                                 observed=entry_dict(ghosts[0]))
            raise
        after_record = self._record(name, plan, before_record, current)
        return self._result(name, plan, before, before_record, after_record, current, store)

    def record_truth(self, store, name, plan, before_record):
        """After a failed step: record what /proc shows now, so a VM this run created never becomes
        "not in inventory" and a record is never lost or left claiming a state that is gone."""
        definition = plan.definition or definition_of(before_record)
        truth = self.locate(name, before_record, self.reader.snapshot())
        if definition is None or (truth is None and before_record is None):
            return
        desired_state = plan.desired_state or before_record['desired_state']
        store.put(new_record(name, definition, *_link(truth), desired_state=desired_state,
                             previous=before_record))

    def _record(self, name, plan, before_record, entry):
        if plan.definition is None:
            return None
        return new_record(name, plan.definition, *_link(entry), desired_state=plan.desired_state,
                          previous=before_record)

    def _result(self, name, plan, before, before_record, after_record, after_entry, store=None):
        record_changed = content(before_record) != content(after_record)
        if store is not None and record_changed:
            if after_record is None:
                store.delete(name)
            else:
                store.put(after_record)
        after = vm_view(name, after_record, after_entry)
        return {
            'changed': bool(plan.steps) or record_changed,
            'vm': after,
            'steps': list(plan.steps),
            'diff': {'before': before, 'after': after},
        }


def with_predictions(snap, predicted):
    """`snap` with the predicted kernel changes applied: VMs replaced per slot, and their memory
    blocks given back to / taken from the pools (only whole blocks count, see proc.free_blocks)."""
    if not predicted or not snap.loaded:
        return snap
    guests = dict((e.index, e) for e in snap.guests)
    block = snap.block_size
    unit = allocation_size(block) if block else None
    pools = dict((node, list(zone['pools'])) for node, zone in snap.zones.items())

    def move(mem_bytes, sign):
        left = blocks_needed(mem_bytes, block) if mem_bytes and block else 0
        if not left:
            return
        for node in sorted(pools):
            for i, pool in enumerate(pools[node]):
                room = (pool.free if sign < 0 else pool.size - pool.free) // unit
                take = min(room, left)
                pools[node][i] = pool._replace(free=pool.free + sign * take * unit)
                left -= take

    for slot in sorted(predicted):
        old = guests.pop(slot, None)
        if old is not None:
            move(old.mem_bytes, +1)
        if predicted[slot] is not None:
            guests[slot] = predicted[slot]
            move(predicted[slot].mem_bytes, -1)
    zones = dict((node, dict(snap.zones[node], pools=pools[node])) for node in pools)
    return Snapshot(True, [guests[i] for i in sorted(guests)], snap.info, zones, snap.details)


def _link(entry):
    """(slot, device, observed_state) for a record."""
    if entry is None:
        return None, None, 'inactive'
    return entry.index, entry.device, entry.state
