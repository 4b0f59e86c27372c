# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging VMs: observe -> plan -> execute -> verify -> record.

One engine for v3vee_vm (one VM), v3vee_vms (a host's VM set) and v3vee_inventory recover
(every recorded VM): Host.converge_all plans a batch from one /proc read and runs it in waves.
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
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import Executor, Tools, ToolTimeout, entry_dict
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_definition
from ansible_collections.v3vee.palacios.plugins.module_utils.view import vm_view

STATE_NAMES = {'none': 'inactive', 'error': 'ERROR'}
# Every plan's steps are a subsequence of this order (tests/unit check it against the planner), so
# a batch runs one wave per step kind: teardown (continue -> stop -> free, 3.2) before build, so
# every free gives its memory and slot back before any create needs them.
WAVES = ('continue', 'stop', 'free', 'create', 'launch', 'pause')


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


class VmJob(object):
    """One VM of a batch: what is asked, what was observed and planned, and how far it got."""

    def __init__(self, name, desired, definition=None, shape=None, force=False, recreate=False, unlisted=False):
        self.name = name
        self.desired = desired
        self.definition = definition
        self.shape = shape
        self.force = force
        self.recreate = recreate
        self.unlisted = unlisted       # not named by the caller: taken to absent by exclusive
        self.located = False           # entry given by the caller, not found by name
        self.record = self.entry = self.plan = self.before = self.current = self.after = None
        self.error = None
        self.result = None
        self.ran = []                  # the steps whose tool a wave started for it

    @property
    def create_args(self):
        return create_args(self.name, self.plan.definition)


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
    def preflight(self, name, plan, snap, shape):
        """Everything a real run would trip over, checked before any tool runs (so check mode
        fails exactly where the real run would). `snap` already shows the batch's frees (_fit)."""
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
        if not snap.free_slots():
            raise V3veeError('All 32 Palacios VM slots are in use; free a VM before creating %r.' % name)
        cpus = snap.info['cpus']
        if shape.vcores > cpus:
            raise V3veeError('VM %r asks for %d vcores but the host has %d CPUs; Palacios does not handle '
                             'more vcores than host CPUs cleanly.' % (name, shape.vcores, cpus))
        block = snap.block_size
        need = blocks_needed(shape.mem_bytes, block)
        have = snap.free_blocks()
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
        slot = snap.free_slots()[0]  # the lowest free slot, its own free included (_fit, 1.1)
        return VmEntry(slot, name, '/dev/v3-vm%d' % slot, record_state(plan.final), shape.vcores,
                       blocks_needed(shape.mem_bytes, snap.block_size), shape.mem_bytes, 'general')

    # -- converge ----------------------------------------------------------------------------
    def converge(self, store, name, desired, definition=None, force=False, recreate=False, shape=None):
        """Bring `name` to `desired`; returns a result dict. Raises V3veeError after recording the truth."""
        job = self.converge_all(store, [VmJob(name, desired, definition, shape, force, recreate)])[0]
        if job.error is not None:
            raise job.error
        return job.result

    def converge_all(self, store, jobs, exclusive=False, force_unlisted=False):
        """Bring every job's VM to its desired state: one /proc observation plans them all, then
        waves run each step for every VM at once (see WAVES), each wave verified by shared /proc
        reads. A VM that fails keeps its error in job.error and the others go on.

        exclusive: every VM in the kernel or the inventory that no job names is taken to absent;
        running or paused ones only with force_unlisted, else nothing is done. Returns the jobs,
        unlisted ones appended, each with .result (or .error).
        """
        snap = self.snapshot(memory=True)
        records = dict((r['name'], r) for r in store.all())
        for job in jobs:
            self._plan(job, records.get(job.name), snap)
        if exclusive:
            jobs = jobs + self._unlisted(jobs, records, snap, force_unlisted)
        predicted = self._fit(jobs, snap)
        if self.check_mode:
            self.predicted.update(predicted)
        else:
            guests = None
            for step in WAVES:
                wave = [job for job in jobs if job.error is None and step in job.plan.steps]
                if wave:
                    guests = self.executor.run_wave(step, wave, guests)
        self._finish(store, jobs)
        return jobs

    def _plan(self, job, record, snap):
        """Observe and plan one job from the shared snapshot; a V3veeError becomes job.error."""
        job.record = record
        try:
            if not job.located:
                job.entry = self.locate(job.name, record, snap)
            if job.entry is not None and job.entry.state is None:
                # The 2012 module printed only "name<TAB>device": no state to plan from.
                raise V3veeError('%s/v3-guests has the old 2-field format (no VM states), so the state of %r '
                                 'cannot be observed; lifecycle changes need a Palacios module with the '
                                 '7-field format.' % (self.settings.proc_dir, job.name),
                                 observed=entry_dict(job.entry))
            self.refuse_unplannable(job.name, snap, job.entry)
            observed = kernel_state(job.entry.state) if job.entry is not None else 'none'
            job.plan = plan_vm(job.name, observed, record, job.definition, job.desired, force=job.force,
                               recreate=job.recreate)
            if 'create' in job.plan.steps and job.shape is None:
                job.shape = check_definition(**job.plan.definition)  # a recorded definition: re-check its files
        except V3veeError as err:
            job.error = err
        job.before = vm_view(job.name, record, job.entry)
        job.current = job.after = job.entry

    def _unlisted(self, jobs, records, snap, force):
        """Jobs taking every VM no job names to absent (exclusive): recorded ones, then kernel VMs
        no record or job claims. Refuses, naming them, when any runs or is paused and not force."""
        listed = set(job.name for job in jobs)
        extra = [VmJob(name, 'absent', force=force, unlisted=True) for name in sorted(records) if name not in listed]
        for job in extra:
            self._plan(job, records[job.name], snap)
        known = jobs + extra
        claimed = set(job.entry.index for job in known if job.entry is not None)
        # A name whose kernel VMs could not be told apart (duplicates) is reported, not guessed at.
        unresolved = set(job.name for job in known if job.error is not None)
        for entry in snap.guests:
            if is_broken(entry):
                # Nothing can free it (item 14); facts and the inventory report it with the remedy.
                self.warnings.append('exclusive: %s' % broken_message(entry))
                continue
            if entry.index not in claimed and entry.name not in unresolved:
                job = VmJob(entry.name, 'absent', force=force, unlisted=True)
                job.located, job.entry = True, entry
                self._plan(job, None, snap)
                extra.append(job)
        live = [job for job in extra if job.entry is not None and not force
                and kernel_state(job.entry.state) in ('running', 'paused')]
        if live:
            raise V3veeError('exclusive: %s %s not in vms and %s; taking %s to absent would stop the guest. Set '
                             'force: true, or list %s in vms. Nothing was done.'
                             % (', '.join('%r (%s, %s)' % (j.name, j.entry.device, j.entry.state) for j in live),
                                'is' if len(live) == 1 else 'are', 'running or paused',
                                'it' if len(live) == 1 else 'them', 'it' if len(live) == 1 else 'them'))
        return extra

    def _fit(self, jobs, snap):
        """Preflight every planned job against the kernel as the batch leaves it, in wave order:
        every free first (memory and slots come back), then each create in job order, taking the
        lowest free slot as the kernel will. Sets job.after (the predicted entry) or job.error.
        Returns the predicted kernel changes (slot -> entry, None: freed)."""
        while True:
            live = [job for job in jobs if job.error is None and job.plan.steps]
            predicted = dict((job.entry.index, None) for job in live if 'free' in job.plan.steps)
            retry = False
            for job in live:
                create = 'create' in job.plan.steps
                view = with_predictions(snap, predicted) if create else snap
                # The VM's own free is already in `view`: it gives back nothing more.
                entry = None if create else job.entry
                try:
                    self.preflight(job.name, job.plan, view, job.shape)
                except V3veeError as err:
                    job.error = err
                    # The failed job does nothing, its free included, which this pass counted: plan again.
                    retry = retry or 'free' in job.plan.steps
                    continue
                job.after = self.predict(job.name, job.plan, view, entry, job.shape)
                if job.after is not None:
                    predicted[job.after.index] = job.after
            if not retry:
                return predicted

    def _finish(self, store, jobs):
        """Results and records: a job that failed after a tool ran records what /proc shows now
        (one read for all of them); one that failed before records nothing, as nothing changed."""
        truth = None
        for job in jobs:
            if job.error is None:
                after_entry = job.after if self.check_mode else job.current
                after_record = self._record(job.name, job.plan, job.record, after_entry)
                job.current = after_entry
                job.result = self._result(job.name, job.plan, job.before, job.record, after_record, after_entry,
                                          None if self.check_mode else store)
                continue
            after_record, after_entry = job.record, job.entry
            if job.ran:
                if truth is None:
                    truth = self.reader.snapshot()
                after_record, after_entry = self.record_truth(store, job.name, job.plan, job.record, truth)
                if isinstance(job.error, ToolTimeout):
                    job.error.found(self.describe(job.name, after_entry), entry_dict(after_entry))
                ghosts = [e for e in truth.broken() if e.name == job.name]
                if 'create' in job.ran and ghosts:
                    # The pools emptied between the check and v3_create (someone else took the memory).
                    err = job.error
                    job.error = V3veeError('v3_create of %r crashed the kernel: %s (%s)'
                                           % (job.name, broken_message(ghosts[0]), err.msg), tool=err.tool,
                                           argv=err.argv, rc=err.rc, stdout=err.stdout, stderr=err.stderr,
                                           observed=entry_dict(ghosts[0]))
            job.current = after_entry
            job.result = {
                'changed': bool(job.ran) or content(job.record) != content(after_record),
                'vm': vm_view(job.name, after_record, after_entry),
                'steps': list(job.ran),
                'diff': {'before': job.before, 'after': vm_view(job.name, after_record, after_entry)},
            }

    def describe(self, name, entry):
        """What /proc shows of VM `name`, in words (for an error message)."""
        guests = os.path.join(self.settings.proc_dir, 'v3-guests')
        if entry is None:
            return '%s shows no VM %r' % (guests, name)
        return '%s shows VM %r at %s %s' % (guests, name, entry.device, entry.state)

    def record_truth(self, store, name, plan, before_record, snap):
        """After a failed step: record what /proc shows now, so a VM this run created never becomes
        "not in inventory" and a record is never lost or left claiming a state that is gone.
        Returns (record, kernel entry) as they now are."""
        definition = plan.definition or definition_of(before_record)
        truth = self.locate(name, before_record, snap)
        if definition is None or (truth is None and before_record is None):
            return before_record, truth
        desired_state = plan.desired_state or before_record['desired_state']
        record = new_record(name, definition, *_link(truth), desired_state=desired_state, previous=before_record)
        store.put(record)
        return record, truth

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


def batch_result(jobs):
    """The result of a converge_all run as v3vee_vms returns it: per VM what v3vee_vm returns
    (plus its error), counts, and a failure listing every VM that failed."""
    items, errors = [], []
    steps, states = {}, {}
    diff = {'before': {}, 'after': {}}
    for job in jobs:
        result = job.result
        item = {'name': job.name, 'changed': result['changed'], 'steps': result['steps'], 'vm': result['vm'],
                'unlisted': job.unlisted, 'error': str(job.error) if job.error is not None else None,
                'guest_configs': result.get('guest_configs', {'written': [], 'removed': []})}
        items.append(item)
        if job.error is not None:
            errors.append({'name': job.name, 'msg': str(job.error)})
        for step in result['steps']:
            steps[step] = steps.get(step, 0) + 1
        states[result['vm']['state']] = states.get(result['vm']['state'], 0) + 1
        diff['before'][job.name] = result['diff']['before']
        diff['after'][job.name] = result['diff']['after']
    out = {
        'changed': any(item['changed'] for item in items),
        'vms': items,
        'summary': {'vms': len(items), 'changed': sum(1 for item in items if item['changed']),
                    'failed': len(errors), 'steps': steps, 'states': states},
        'diff': diff,
    }
    if errors:
        out.update(failed=True, errors=errors, msg='%d of %d VM(s) failed: %s' % (
            len(errors), len(items), '; '.join('%s: %s' % (e['name'], e['msg']) for e in errors)))
    return out


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
