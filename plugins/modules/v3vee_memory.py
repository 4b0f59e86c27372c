#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: v3vee_memory
short_description: Reserve memory for Palacios (V3VEE) with v3_mem, idempotently
version_added: 0.1.0
description:
  - Brings the memory reserved by Palacios to a desired size per NUMA node (O(node_mb)) or in total (O(total_mb)).
  - Reads the current pools from C(v3-mem<N>) in the proc directory. The reserved size of a node is the sum of
    its pools minus the 4 MB seed pool the module allocates at load time (it is not reserved memory).
  - Grows by adding chunks of the run-time block size (C(v3_mem -a)) until the target is met, so the reservation
    ends within one chunk above the target. Shrinks by releasing entirely free pools (C(v3_mem -r <hexaddr>)),
    highest address first, as long as the reservation stays at or above the target. Memory a VM uses is never
    released; a target that would need it fails with the list of pools in use. O(total_mb=0) or O(node_mb)
    zeros release everything free.
  - Every call is verified by re-reading C(v3-mem<N>) (a new pool appeared, the pool is gone), because V(v3_mem)
    exit codes do not tell.
author:
  - v3vee.palacios maintainers (@v3vee)
options:
  node_mb:
    description:
      - 'Desired reserved MB per NUMA node, for example C({0: 512, 1: 256}). Nodes not named are left alone.'
      - Mutually exclusive with O(total_mb).
    type: dict
  total_mb:
    description:
      - Desired reserved MB over all nodes.
      - On a multi-node host each added chunk goes to the node with the least reserved memory (lowest node
        number on ties), with C(-n), so the result is predictable; shrinking releases free pools on any node.
      - Mutually exclusive with O(node_mb).
    type: int
  method:
    description:
      - V(hotremove) - offline hot-removable memory blocks and hand them to Palacios (C(v3_mem -a)). The
        ranges are recorded in C($PALACIOS_DIR/.v3offlinedmem).
      - V(kernel) - ask the kernel for pages (C(v3_mem -k -a)). The kernel gives at most 4 MB in one piece
        (MAX_ORDER 11), so this needs the Palacios module loaded with C(options="mem_block_size=4194304")
        (or smaller); with a larger run-time block size the module fails before running anything.
    type: str
    choices: [hotremove, kernel]
    default: hotremove
  below_4g:
    description: Reserve memory below 4 GB only (C(v3_mem -l)), for guests or devices that need 32-bit addresses.
    type: bool
    default: false
extends_documentation_fragment:
  - v3vee.palacios.common
  - v3vee.palacios.common.ATTRIBUTES
attributes:
  check_mode:
    description: Plans and predicts the pools and reserved sizes exactly (the base address of a new pool is unknown
      and returned as null) without running V(v3_mem).
    support: full
  diff_mode:
    description: Returns the reserved MB per node before and after.
    support: full
notes:
  - Each C(v3_mem -a) chunk must lie between the run-time and the compiled block size (both from C(v3-info)); the
    module uses the run-time block size and refuses a run-time block size the kernel would reject.
  - V(v3_mem) needs E(PALACIOS_DIR) for every operation; it is set from O(palacios_dir).
  - A hot-remove C(v3_mem -a) the kernel rejects leaves the memory offline and recorded in
    C($PALACIOS_DIR/.v3offlinedmem) with no pool behind it. The module reports such leaked ranges (return value
    RV(leaked_offline), a warning, and the error of the call that leaked) with the remedy; C(v3_mem -r offline)
    does not recover them.
  - Release memory before unloading the module; C(rmmod v3vee) does not online hot-removed memory.
  - There is no reset option, and the collection never runs C(v3_mem_reset). On real Palacios it drops every pool
    and loses memory hot-removed with C(v3_mem -a) (it stays offline; a later C(v3_mem -r offline) is rejected),
    so only a reboot gets that memory back. Shrinking releases pools one by one instead.
seealso:
  - module: v3vee.palacios.v3vee_vm
'''

EXAMPLES = r'''
- name: Reserve 1 GB for guests on a single-node host (hot-remove, 128 MB chunks)
  v3vee.palacios.v3vee_memory:
    total_mb: 1024

- name: Reserve per NUMA node
  v3vee.palacios.v3vee_memory:
    node_mb:
      0: 512
      1: 256

- name: Kernel allocation in 4 MB chunks (module loaded with options="mem_block_size=4194304"), below 4 GB
  v3vee.palacios.v3vee_memory:
    total_mb: 64
    method: kernel
    below_4g: true

- name: Release every free pool
  v3vee.palacios.v3vee_memory:
    total_mb: 0
'''

RETURN = r'''
pools_before:
  description: Pools per NUMA node (keys are node numbers as strings) before the run, as C(v3-mem<N>) lists them.
  returned: always
  type: dict
  sample: {"0": [{"base": "0x7f400000", "order": 22, "size": 4194304, "free": 4161536}]}
pools_after:
  description: Pools per node after the run (in check mode, predicted; a new pool's C(base) is null).
  returned: always
  type: dict
  sample: {"0": [{"base": "0x8000000", "order": 27, "size": 134217728, "free": 134217728},
                {"base": "0x7f400000", "order": 22, "size": 4194304, "free": 4161536}]}
reserved_mb_before:
  description: Reserved MB per node before the run (pools minus the seed pool).
  returned: always
  type: dict
  sample: {"0": 0}
reserved_mb_after:
  description: Reserved MB per node after the run (predicted in check mode).
  returned: always
  type: dict
  sample: {"0": 128}
block_size:
  description: The size in bytes of every chunk added, the run-time block size from C(v3-info).
  returned: always
  type: int
  sample: 134217728
steps:
  description: The planned (check mode) or executed v3_mem calls, with the node, size and pool base.
  returned: always
  type: list
  elements: dict
  sample: [{"op": "add", "node": 0, "size": 134217728, "base": "0x8000000", "argv": ["-a", "128"]}]
leaked_offline:
  description: Ranges recorded in C($PALACIOS_DIR/.v3offlinedmem) that back no pool (offline memory lost to
    Linux and Palacios), each with C(base) and C(length) in bytes.
  returned: always
  type: list
  elements: dict
  sample: []
commands:
  description: The v3 tool commands run, as argument lists.
  returned: always
  type: list
  elements: list
  sample: [["/usr/local/bin/v3_mem", "-a", "128"]]
duration:
  description: Seconds the run took.
  returned: always
  type: float
  sample: 0.12
diff:
  description: Reserved MB per node before and after (with C(--diff)).
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.memory import (
    METHODS, MemoryHost, leak_remedy, mb_view, plan_memory, pools_view, predict_pools, reserved_bytes)
from ansible_collections.v3vee.palacios.plugins.module_utils.module import run_module


def memory_argument_spec():
    return argument_spec(
        node_mb=dict(type='dict'),
        total_mb=dict(type='int'),
        method=dict(type='str', default='hotremove', choices=list(METHODS)),
        below_4g=dict(type='bool', default=False),
    )


def step_view(step):
    view = dict(step)
    view['base'] = '0x%x' % step['base'] if step['base'] is not None else None
    return view


def main():
    module = AnsibleModule(
        argument_spec=memory_argument_spec(),
        mutually_exclusive=[('node_mb', 'total_mb')],
        required_one_of=[('node_mb', 'total_mb')],
        supports_check_mode=True,
    )
    params = module.params
    if params['total_mb'] is not None:
        target = {'total': params['total_mb']}
    else:
        target = {'per_node': params['node_mb']}

    def converge(session, store):
        host = MemoryHost(session.host.tools, session.host.reader, session.settings.palacios_dir)
        info, zones = host.observe()
        nodes = info['nodes']
        plan = plan_memory(zones, info, target, method=params['method'], below_4g=params['below_4g'])
        steps = plan['steps']
        leaks = host.leaks(zones)
        if leaks:
            session.host.warnings.append(leak_remedy(leaks, session.settings.palacios_dir))
        if steps and not module.check_mode:
            if not session.settings.palacios_dir:
                raise V3veeError('v3_mem needs PALACIOS_DIR (it keeps .v3offlinedmem there): set palacios_dir, the '
                                 'PALACIOS_DIR environment variable or PALACIOS_DIR in the host settings file.')
            for step in steps:
                host.execute(step, leaks)
            _info, after_zones = host.observe()
            pools_after = pools_view(after_zones, nodes)
            plan['reserved_after'] = dict((n, reserved_bytes(after_zones.get(n, {}).get('pools', [])))
                                          for n in range(nodes))
        else:
            pools_after = dict(('%d' % n, p) for n, p in predict_pools(zones, steps, nodes).items())
        before_mb, after_mb = mb_view(plan['reserved_before']), mb_view(plan['reserved_after'])
        return {
            'changed': bool(steps),
            'pools_before': pools_view(zones, nodes),
            'pools_after': pools_after,
            'reserved_mb_before': before_mb,
            'reserved_mb_after': after_mb,
            'block_size': info['runtime_block_size'],
            'steps': [step_view(s) for s in steps],
            'leaked_offline': [{'base': base, 'length': length} for base, length in leaks],
            'diff': {'before': {'reserved_mb': before_mb}, 'after': {'reserved_mb': after_mb}},
        }

    run_module(module, converge)


if __name__ == '__main__':
    main()
