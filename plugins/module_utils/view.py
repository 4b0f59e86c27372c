# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How modules show a VM. Its own file so that read-only modules (v3vee_facts) do not ship and
compile the converge engine (vm.py) in their payload just for this."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


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
