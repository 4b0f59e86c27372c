# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Matching inventory records to kernel VMs, and the GUI's three categories.

The GUI (interface spec 6.3) called a record active when a /proc line had the same name AND
device, and matched only 2-field lines (so with the 7-field format nothing was ever active).
Here a record matches the VM in its recorded slot if the name agrees; else a VM with that
name if there is exactly one (the record is relinked); duplicates are never guessed. A broken
(ghost) slot, left by a v3_create that crashed the kernel, never matches a record.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.v3vee.palacios.plugins.module_utils.proc import is_broken

ACTIVE_INVENTORY = 'active_inventory'
INACTIVE_INVENTORY = 'inactive_inventory'
NOT_IN_INVENTORY = 'not_in_inventory'
CATEGORIES = (ACTIVE_INVENTORY, INACTIVE_INVENTORY, NOT_IN_INVENTORY)

# Drift codes: how a record differs from what the kernel shows.
SLOT_GONE = 'slot_gone'              # recorded slot is empty (freed behind our back, or a reboot)
SLOT_REUSED = 'slot_reused'          # recorded slot now holds another VM
RELINKED = 'relinked'                # found under its name in another slot
DUPLICATE_NAMES = 'duplicate_names'  # several kernel VMs carry the name; none could be chosen
STATE_CHANGED = 'state_changed'      # recorded observed_state differs from the kernel
NOT_DESIRED = 'not_desired_state'    # kernel state differs from the recorded desired state
BROKEN_SLOT = 'broken_slot'          # recorded slot, or a kernel line with this name, is a ghost slot


def match_record(name, slot, guests):
    """Return (entry or None, drift codes, kernel entries with this name). Broken slots are
    never returned: they are reported as BROKEN_SLOT drift (instead of SLOT_REUSED/SLOT_GONE
    when the recorded slot is one)."""
    drift = []
    broken = [e for e in guests if is_broken(e)]
    if any(e.index == slot or e.name == name for e in broken):
        drift.append(BROKEN_SLOT)
    guests = [e for e in guests if not is_broken(e)]
    same_name = [e for e in guests if e.name == name]
    if slot is not None:
        in_slot = [e for e in guests if e.index == slot]
        if in_slot and in_slot[0].name == name:
            return in_slot[0], drift, same_name
        if not any(e.index == slot for e in broken):
            drift.append(SLOT_REUSED if in_slot else SLOT_GONE)
    if len(same_name) > 1:
        drift.append(DUPLICATE_NAMES)
        return None, drift, same_name
    if same_name and slot is not None:
        drift.append(RELINKED)
    return (same_name[0] if same_name else None), drift, same_name


def state_drift(record, entry):
    """STATE_CHANGED / NOT_DESIRED codes for a matched (or unmatched) record."""
    drift = []
    kernel = entry.state if entry is not None else 'inactive'
    if record.get('observed_state') != kernel:
        drift.append(STATE_CHANGED)
    desired = record.get('desired_state')
    if desired and desired != kernel:
        drift.append(NOT_DESIRED)
    return drift


def classify(records, guests):
    """Every VM known to the kernel or the inventory, once, with its category.

    Returns a list of dicts: name, category, record (or None), entry (or None), drift (codes).
    A broken slot is listed as not_in_inventory with the drift BROKEN_SLOT.
    """
    out = []
    claimed = set()
    for record in sorted(records, key=lambda r: r['name']):
        entry, drift = match_record(record['name'], record.get('slot'), guests)[:2]
        if entry is not None:
            claimed.add(entry.index)
        drift = drift + state_drift(record, entry)
        out.append({'name': record['name'], 'record': record, 'entry': entry, 'drift': drift,
                    'category': ACTIVE_INVENTORY if entry is not None else INACTIVE_INVENTORY})
    for entry in guests:
        if entry.index not in claimed:
            out.append({'name': entry.name, 'record': None, 'entry': entry,
                        'drift': [BROKEN_SLOT] if is_broken(entry) else [], 'category': NOT_IN_INVENTORY})
    return out
