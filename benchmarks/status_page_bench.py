#!/usr/bin/env python
"""How long the fleet status page (role status_page) takes to build and render on the
controller for a fleet of --hosts hosts with 32 VMs each and --messages kernel messages per
host: the model (status_page_model), the JSON and the HTML (status_page_html), and the size of
both files. Facts are synthetic, shaped like v3vee_facts' (two NUMA nodes, every state, drift).
Prints figures only; nothing is asserted.

    python benchmarks/status_page_bench.py [--hosts 8] [--runs 20] [--messages 50]
"""

import argparse
import json
import os
import runpy
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tests/conftest.py makes this checkout importable as ansible_collections.v3vee.palacios.
runpy.run_path(os.path.join(ROOT, 'tests', 'conftest.py'))

from ansible_collections.v3vee.palacios.plugins.plugin_utils.status_page import fleet_model, render_html  # noqa: E402  pylint: disable=wrong-import-position

MiB = 1048576
STATES = ('running', 'paused', 'stopped', 'ERROR')
CATEGORIES = ('active_inventory', 'not_in_inventory')


def host_result(index, messages):
    vms = []
    for slot in range(32):
        vms.append({'name': 'h%d-vm%02d' % (index, slot), 'category': CATEGORIES[slot % 5 == 0], 'state': STATES[slot % 4],
                    'slot': slot, 'device': '/dev/v3-vm%d' % slot, 'in_kernel': True, 'in_inventory': slot % 5 != 0,
                    'vcores': 1 + slot % 4, 'mem_mb': 128, 'config': '/srv/palacios/guest-%02d.xml' % slot,
                    'image': None, 'config_options': {'mem': 128}, 'desired_state': 'running',
                    'drift': ['state_changed'] if slot % 7 == 0 else [], 'duplicate_name': False})
    nodes = [{'node': n, 'pool_bytes': 2052 * MiB, 'reserved_bytes': 2048 * MiB, 'free_bytes': 4 * MiB,
              'free_blocks': 0, 'largest_free_block': 4 * MiB,
              'fits': [{'mem_mb': 128, 'blocks_per_vm': 1, 'vms': 0}, {'mem_mb': 512, 'blocks_per_vm': 4, 'vms': 0}]}
             for n in (0, 1)]
    msgs = [{'pcore': i % 4, 'vm': 'h%d-vm%02d' % (index, i % 32) if i % 2 else None, 'vcore': 0 if i % 2 else None,
             'location': None, 'message': 'V3 -- Starting VM (1 cores) <%d>' % i, 'uptime': 10.0 + i,
             'time': None, 'host': None} for i in range(messages)]
    return {'changed': False, 'ansible_facts': {'v3vee': {
        'module_loaded': True, 'control_device_present': True, 'backend': 'palacios', 'problems': [],
        'paths': {}, 'tools': {'missing': []},
        'host': {'nodes': 2, 'cpus': 16, 'runtime_block_size': 128 * MiB, 'max_vms': 32, 'vm_slots_used': 32,
                 'vm_slots_free': 0},
        'memory': {'block_size': 128 * MiB, 'nodes': nodes, 'free_blocks': 0,
                   'fits': [{'mem_mb': 128, 'vms': 0}, {'mem_mb': 512, 'vms': 0}]},
        'vms': vms, 'telemetry': {'messages': msgs, 'path': '/var/log/kern.log', 'truncated': True}}}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=8)
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--messages', type=int, default=50)
    args = parser.parse_args()
    results = dict(('host%02d' % i, host_result(i, args.messages)) for i in range(args.hosts))
    hosts = list(results)
    times = {'model': [], 'json': [], 'html': []}
    for _run in range(args.runs):
        start = time.perf_counter()
        model = fleet_model(results, hosts, vm_mem_mb=[128, 512])
        mid = time.perf_counter()
        data = json.dumps(model, indent=4)
        end_json = time.perf_counter()
        page = render_html(model)
        end = time.perf_counter()
        times['model'].append(mid - start)
        times['json'].append(end_json - mid)
        times['html'].append(end - end_json)
    total = [sum(parts) for parts in zip(*times.values())]
    print('status page, %d hosts x 32 VMs, %d kernel messages per host, %d runs:' % (
        args.hosts, args.messages, args.runs))
    for name, values in sorted(times.items()) + [('total', total)]:
        print('  %-6s median %7.2f ms  max %7.2f ms' % (name, 1000 * statistics.median(values), 1000 * max(values)))
    print('  page %d bytes, JSON %d bytes' % (len(page.encode('utf-8')), len(data.encode('utf-8'))))


if __name__ == '__main__':
    main()
