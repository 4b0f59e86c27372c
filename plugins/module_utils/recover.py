# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recovery planning: what it takes to bring every recorded VM back to its desired state.

The GUI promised that after a reboot (kernel empty, database intact) every activated VM "will
be available in the database and recreated" but never did it. Recovery acts only on records
whose desired state is a kernel state (stopped, running, paused); it never tears a VM down.
Execution is one Host.converge_all batch (which re-plans, runs the steps in waves, verifies every
step and records the truth).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import KERNEL_DESIRED, kernel_state, plan_vm
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import broken_message, is_broken
from ansible_collections.v3vee.palacios.plugins.module_utils.reconcile import DUPLICATE_NAMES, match_record

CONVERGE = 'converge'   # steps to run
IN_STATE = 'in_state'   # already in its desired state
SKIP = 'skip'           # desired state inactive (or none): recovery does not touch it
ERROR = 'error'         # cannot be planned (duplicate names, transitional state, broken slot)


def recovery_order(records, slots=None):
    """Records in the order recovery creates them: by the slot each was recorded in (so that,
    with slots reused lowest-first, a host recovered after a reboot gets its VMs back at the same
    /dev/v3-vmN), then by name for those that had none. `slots` overrides the recorded slots
    (the ones read before this run changed anything)."""
    slots = slots or {}

    def key(record):
        slot = slots.get(record['name'], record.get('slot'))
        return (slot is None, slot if slot is not None else 0, record['name'])
    return sorted(records, key=key)


def plan_recover(records, guests, slots=None):
    """One entry per record, in execution order: name, desired_state, observed (planner state, or
    None while transitional), device, steps, action (CONVERGE / IN_STATE / SKIP / ERROR), reason."""
    plans = []
    for record in recovery_order(records, slots):
        name = record['name']
        desired = record.get('desired_state')
        entry, drift, same = match_record(name, record.get('slot'), guests)
        ghosts = [e for e in guests if is_broken(e) and e.name == name]
        observed = kernel_state(entry.state) if entry is not None else 'none'
        item = {'name': name, 'desired_state': desired, 'observed': observed, 'steps': [], 'reason': None,
                'device': entry.device if entry is not None else None}
        if desired not in KERNEL_DESIRED:
            item['action'] = SKIP
            item['reason'] = 'desired state is %s: recover never frees or stops a VM for it' % desired
        elif ghosts:
            item['action'] = ERROR
            item['reason'] = broken_message(ghosts[0])
        elif observed is None:
            item['action'] = ERROR
            item['reason'] = 'the kernel shows %s at %s, a transitional state (UNKNOWN while v3_reset runs)' % (
                entry.state, entry.device)
        elif DUPLICATE_NAMES in drift:
            item['action'] = ERROR
            item['reason'] = 'the kernel has %d VMs named %r (%s); none is guessed' % (
                len(same), name, ', '.join(e.device for e in same))
        else:
            try:
                plan = plan_vm(name, observed, record, None, desired)
            except V3veeError as err:
                item['action'] = ERROR
                item['reason'] = err.msg
            else:
                item['steps'] = list(plan.steps)
                item['action'] = CONVERGE if plan.steps else IN_STATE
        plans.append(item)
    return plans
