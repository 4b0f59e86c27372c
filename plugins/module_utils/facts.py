# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host facts (v3vee_facts): read-only, each /proc/v3vee file read at most once, never failing
on a host without Palacios (what is absent is reported as absent; what is broken is reported
in `problems`)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sqlite3

from ansible_collections.v3vee.palacios.plugins.module_utils import kmsg
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import is_managed, portable_definition
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import (
    BROKEN_REMEDY, MAX_VMS, SEED_POOL_SIZE, ProcReader, Snapshot, blocks_needed, broken_message, free_blocks,
    is_broken, largest_free_block, vms_fitting)
from ansible_collections.v3vee.palacios.plugins.module_utils.reconcile import CATEGORIES, classify
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import Tools
from ansible_collections.v3vee.palacios.plugins.module_utils.view import vm_view

SUBSETS = ('tools', 'host', 'memory', 'vms', 'telemetry')
# The tools the collection drives (lifecycle, memory, checkpoint/migration).
FACT_TOOLS = ('v3_create', 'v3_free', 'v3_launch', 'v3_stop', 'v3_pause', 'v3_continue', 'v3_reset',
              'v3_mem', 'v3_mem_reset', 'v3_save', 'v3_load', 'v3_send', 'v3_receive')
MiB = 1048576


def resolve_subsets(gather_subset):
    """gather_subset as Ansible's setup reads it: `all`, names, `!name` / `!all` exclusions; an
    explicitly named subset wins over an exclusion; only exclusions mean "all but those".
    `min` (module_loaded, paths, backend, problems) is always gathered. Unknown names raise."""
    include, exclude, explicit = set(), set(), set()
    minimal = False
    for item in gather_subset or ['all']:
        item = item.strip()
        negated = item.startswith('!')
        name = item[1:] if negated else item
        if name not in SUBSETS + ('all', 'min'):
            raise V3veeError('Unknown gather_subset %r; valid: all, min, %s (each may be negated with !).'
                             % (item, ', '.join(SUBSETS)))
        names = set(SUBSETS) if name == 'all' else set() if name == 'min' else set([name])
        if negated:
            exclude |= names
        else:
            include |= names
            minimal = minimal or name == 'min'
            if name not in ('all', 'min'):
                explicit.add(name)
    if not include and not minimal:
        include = set(SUBSETS)
    return [name for name in SUBSETS if name in include - (exclude - explicit)]


def _snapshot(reader, memory, details, problems):
    try:
        return reader.snapshot(memory=memory, details=details)
    except (V3veeError, ValueError) as err:
        # A proc file that does not parse: report it, show the kernel side as empty.
        problems.append('%s' % err if isinstance(err, V3veeError) else
                        'Cannot parse %s: %s. Is this a Palacios /proc/v3vee?' % (reader.proc_dir, err))
        return Snapshot(reader.module_loaded())


def tool_facts(settings, runner):
    tools = Tools(settings, runner)
    found = {}
    for name in FACT_TOOLS:
        path = tools.find(name)
        if path is not None:
            found[name] = path
    return {
        'found': found,
        'missing': [name for name in FACT_TOOLS if name not in found],
        'search_dirs': tools.search_dirs(),
    }


def host_facts(snap):
    if not snap.loaded or not snap.info:
        return None
    info = snap.info
    cpu_map = info['cpu_to_node']
    cpu_to_node = [cpu_map.get(cpu) for cpu in range(max(cpu_map) + 1)] if cpu_map else []
    used = len(snap.guests)
    return {
        'nodes': info['nodes'],
        'cpus': info['cpus'],
        'cpu_to_node': cpu_to_node,
        'kernel_max_order': info['max_order'],
        # The largest chunk alloc_pages can give v3_mem -k: 4096 * 2^(MAX_ORDER-1) (spec 4.2).
        'kernel_largest_alloc': 4096 << max(info['max_order'] - 1, 0),
        'compiled_block_size': info['compiled_block_size'],
        'runtime_block_size': info['runtime_block_size'],
        'max_vms': MAX_VMS,
        'vm_slots_used': used,
        'vm_slots_free': len(snap.free_slots()),
        'broken_slots': [{'slot': e.index, 'name': e.name, 'device': e.device, 'remedy': BROKEN_REMEDY}
                         for e in snap.broken()],
    }


def _fits(zones, block, sizes_mb):
    return [{'mem_mb': mb, 'blocks_per_vm': blocks_needed(mb * MiB, block) if block else None,
             'vms': vms_fitting(zones, block, mb * MiB)} for mb in sizes_mb]


def _zone_facts(node, zone, block, sizes_mb):
    pools = zone['pools']
    size = sum(p.size for p in pools)
    return {
        'node': node,
        'pools': [{'base': '0x%016x' % p.base, 'order': p.order, 'size': p.size, 'free': p.free} for p in pools],
        'pool_bytes': size,
        # The seed pool (4 MB, insmod) is not reservation; it cannot be told apart from a 4 MB
        # v3_mem -k pool by its line, nor is it always first by address: subtract it once.
        'reserved_bytes': max(size - SEED_POOL_SIZE, 0),
        'free_bytes': sum(p.free for p in pools),
        'largest_free_block': largest_free_block(zone),
        'free_blocks': free_blocks({node: zone}, block),
        'fits': _fits({node: zone}, block, sizes_mb),
    }


def memory_facts(snap, sizes_mb):
    if not snap.loaded or not snap.info:
        return None
    block = snap.block_size
    nodes = [_zone_facts(node, snap.zones[node], block, sizes_mb) for node in sorted(snap.zones)]
    largest = [n['largest_free_block'] for n in nodes if n['largest_free_block'] is not None]
    slots = len(snap.free_slots())
    fits = _fits(snap.zones, block, sizes_mb)
    for item in fits:
        item['vms_by_memory'] = item['vms']
        item['free_slots'] = slots
        item['vms'] = min(item['vms'], slots)
    return {
        'block_size': block,
        'nodes': nodes,
        'pool_bytes': sum(n['pool_bytes'] for n in nodes),
        'reserved_bytes': sum(n['reserved_bytes'] for n in nodes),
        'free_bytes': sum(n['free_bytes'] for n in nodes),
        'free_blocks': snap.free_blocks(),
        'largest_free_block': max(largest) if largest else None,
        'fits': fits,
    }


def read_inventory(path, problems):
    """(inventory facts, records). A missing database is an empty inventory; one that cannot be
    read (permissions, not SQLite, not ours, newer schema) is a problem, not a failure."""
    facts = {'path': path, 'exists': os.path.exists(path), 'records': 0, 'error': None}
    store = InventoryStore(path, readonly=True)
    checkpoints = []
    try:
        records = store.all()
        checkpoints = store.checkpoints()
    except V3veeError as exc:
        facts['error'] = str(exc)
        records = []
    except (sqlite3.Error, IOError, OSError) as exc:
        facts['error'] = 'Cannot read the inventory %s: %s.' % (path, exc)
        records = []
    finally:
        store.close()
    if facts['error']:
        problems.append('%s Its VMs are left out; kernel VMs show as not_in_inventory.' % facts['error'])
    facts['records'] = len(records)
    facts['checkpoints'] = len(checkpoints)
    return facts, records, checkpoints


def checkpoint_fact(record):
    """A recorded checkpoint as facts show it (the definition stays in the inventory and the manifest)."""
    return {'path': record['path'], 'store': record['store'], 'url': record['url'], 'saved_at': record['saved_at'],
            'vm_state': record['vm_state'], 'memory_bytes': record['memory_bytes'], 'cores': record['cores'],
            'recover': record['recover'], 'exists': os.path.isdir(record['path'])}


def vcore_facts(detail):
    """The vcores of one v3-guests-details entry, as modules return them."""
    cores = []
    for vcore in detail.get('vcores', []):
        mode = vcore['mode'] + [''] * (4 - len(vcore['mode']))
        cores.append({'vcore': vcore['vcore'], 'state': vcore['state'], 'pcore': vcore['pcore'],
                      'exits': vcore['exits'], 'rip': vcore['rip'], 'cpu_mode': mode[0], 'mem_mode': mode[1],
                      'paging': mode[2], 'vcore_type': mode[3]})
    return cores


def vm_fact(item, details):
    record, entry = item['record'], item['entry']
    fact = vm_view(item['name'], record, entry)
    fact.update({
        'category': item['category'],
        'in_kernel': entry is not None,
        'mem_mb': entry.mem_bytes // MiB if entry is not None and entry.mem_bytes is not None else None,
        'regions': entry.regions if entry is not None else None,
        'recorded_state': record.get('observed_state') if record else None,
        'recorded_slot': record.get('slot') if record else None,
        'recorded_device': record.get('device') if record else None,
        'drift': list(item['drift']),
        'broken': entry is not None and is_broken(entry),
        'remedy': BROKEN_REMEDY if entry is not None and is_broken(entry) else None,
    })
    if details is not None:
        detail = details.get(entry.index) if entry is not None else None
        fact['cores'] = vcore_facts(detail) if detail else None
        fact['memory_regions'] = [
            {'region': r['region'], 'hpa_start': '0x%016x' % r['hpa_start'], 'hpa_end': '0x%016x' % r['hpa_end'],
             'node': r['node'], 'gpa': '0x%016x' % r['gpa']} for r in detail['memory_regions']] if detail else None
    return fact


def _order(fact):
    # The GUI's tree order: its three headings, then slot, then name.
    slot = fact['slot'] if fact['slot'] is not None else MAX_VMS
    return CATEGORIES.index(fact['category']), slot, fact['name']


def vm_facts(snap, records, details):
    vms = sorted((vm_fact(item, details) for item in classify(records, snap.guests)), key=_order)
    # A broken slot keeps the name of the create that crashed; it is not a second VM of that name.
    names = [vm['name'] for vm in vms if not vm['broken']]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    by_state = {}
    for vm in vms:
        vm['duplicate_name'] = vm['name'] in duplicates
        by_state[vm['state']] = by_state.get(vm['state'], 0) + 1
    counts = {
        'total': len(vms),
        'in_kernel': sum(1 for vm in vms if vm['in_kernel']),
        'by_category': dict((cat, sum(1 for vm in vms if vm['category'] == cat)) for cat in CATEGORIES),
        'by_state': by_state,
        'drifted': sum(1 for vm in vms if vm['drift']),
        'broken': sum(1 for vm in vms if vm['broken']),
    }
    by_name = dict((vm['name'], vm) for vm in vms if vm['name'] not in duplicates and not vm['broken'])
    return vms, by_name, duplicates, counts


def paths(settings):
    out = settings.as_dict()
    out.pop('backend', None)
    return out


def gather(settings, runner, subsets=SUBSETS, vm_mem_mb=(128,), vm_details=False, telemetry_lines=50,
           telemetry_vm=None, telemetry_source='auto', telemetry_exclude=kmsg.DEFAULT_EXCLUDE,
           which=kmsg.find_command):
    """All facts for the host `settings` describe. `runner(argv, cwd=None, env_update=None)` ->
    (rc, stdout, stderr) runs commands (telemetry only), never through a shell."""
    problems = []
    reader = ProcReader(settings.proc_dir)
    facts = {
        'gather_subset': list(subsets),
        'backend': settings.backend,
        'paths': paths(settings),
        'module_loaded': reader.module_loaded(),
        'control_device_present': os.path.exists(os.path.join(settings.dev_dir, 'v3vee')),
        'problems': problems,
    }
    if 'telemetry' in subsets:
        # Before /proc: on real Palacios every read of v3-guests logs a line of its own.
        facts['telemetry'] = kmsg.collect(runner, count=telemetry_lines, vm=telemetry_vm, source=telemetry_source,
                                          kernel_log=settings.kernel_log, exclude=telemetry_exclude, which=which)
        if facts['telemetry']['error']:
            problems.append(facts['telemetry']['error'])
    if 'tools' in subsets:
        facts['tools'] = tool_facts(settings, runner)
    if set(subsets) & set(('host', 'memory', 'vms')):
        snap = _snapshot(reader, memory='memory' in subsets, details=vm_details and 'vms' in subsets,
                         problems=problems)
        facts['module_loaded'] = snap.loaded
        for entry in snap.broken():
            problems.append(broken_message(entry))
        if 'host' in subsets:
            facts['host'] = host_facts(snap)
        if 'memory' in subsets:
            facts['memory'] = memory_facts(snap, vm_mem_mb)
        if 'vms' in subsets:
            facts['inventory'], records, checkpoints = read_inventory(settings.inventory_path, problems)
            details = (snap.details or {}) if vm_details else None
            facts['vms'], facts['vms_by_name'], facts['duplicate_names'], facts['vm_counts'] = \
                vm_facts(snap, records, details)
            for vm in facts['vms']:
                vm['config_inline'] = is_managed(settings.inventory_path, vm['config'])
                vm['definition'] = portable_definition(vm, settings.inventory_path) if vm['in_inventory'] else None
                # Oldest first: the last one is what recover restores from when it asks (v3vee_checkpoint).
                vm['checkpoints'] = [checkpoint_fact(c) for c in checkpoints if c['vm'] == vm['name']]
    return facts
