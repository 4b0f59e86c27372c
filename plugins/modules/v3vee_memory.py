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
  - Before the first V(v3_mem) call the module checks what each node can still give. Hot-remove needs, per chunk,
    consecutive memory blocks that are online and removable in C(/sys/devices/system/memory) (path from
    E(V3VEE_SYS_DIR) in the host settings file, for a simulated host); method V(kernel) is bounded by the node's
    online memory. A target beyond that fails with nothing run (also in check mode) and says how much can be
    reached.
  - Every call is verified by re-reading C(v3-mem<N>) (a new pool appeared, the pool is gone), because V(v3_mem)
    exit codes do not tell.
author:
  - v3vee.palacios maintainers (@v3vee)
requirements:
  - the Palacios tool C(v3_mem) on the managed host (see O(tools_dir))
  - the Palacios kernel module C(v3vee.ko) loaded (C(v3_mem) needs it even to release memory)
  - root on the managed host (C(v3_mem) opens the root-only C(/dev/v3vee) and offlines memory blocks in sysfs)
  - O(palacios_dir) or E(PALACIOS_DIR) or the host settings file, where C(v3_mem) records offlined memory
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
  freed_vms:
    description:
      - Names of VMs that earlier tasks of the same play free (M(v3vee.palacios.v3vee_vm) with
        O(v3vee.palacios.v3vee_vm#module:state=absent) or V(inactive)), so that the play's dry run predicts this
        task right.
      - In check mode those tasks only predicted the frees and the VMs still hold their memory in the kernel; the plan
        then counts their memory as given back to the pools. Exact when every VM of a pool is named (as in
        C(playbooks/teardown.yml), which frees them all); otherwise the blocks are counted back pool by pool in
        address order, as Palacios does not show which pool holds which VM.
      - In a real run it changes nothing, because the kernel is the truth. The VMs are gone by then, and memory a VM
        still uses is never released.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds each V(v3_mem) call may run. Past it the call's process group is killed (SIGTERM, then SIGKILL
        after 2 seconds), C(v3-mem<N>) is read again and the task fails naming the call, how long it ran and the
        pools found; calls already made stay made and C(changed) says so.
      - Longer than O(v3vee.palacios.v3vee_vm#module:timeout)'s default because hot-removing memory migrates the
        pages in use out of each block first, which can take long on a busy host.
    type: int
    default: 120
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
  - The capacity check is an upper bound - Linux may still refuse to offline a block marked removable (pages in use
    that cannot move), and the kernel may refuse a V(kernel) allocation sooner. The run then stops at that call,
    reports the error and C(changed=true) if earlier calls took effect.
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

- name: Delete two VMs, then release everything (the dry run, --check, predicts the release too)
  v3vee.palacios.v3vee_vm:
    name: "{{ item }}"
    state: absent
    force: true
  loop: [web1, web2]

- name: Release the memory they used
  v3vee.palacios.v3vee_memory:
    total_mb: 0
    freed_vms: [web1, web2]
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
  description:
    - The planned (check mode) or executed v3_mem calls, with the node and size. Consecutive identical
      C(v3_mem -a) calls are one entry with their C(count); a release names its pool's C(base) (count 1).
    - The new pools' addresses are in RV(pools_after).
  returned: always
  type: list
  elements: dict
  sample: [{"op": "add", "node": 0, "size": 134217728, "count": 2, "argv": ["-a", "128"]},
           {"op": "release", "node": 0, "size": 134217728, "base": "0x10000000", "count": 1,
            "argv": ["-r", "0x10000000"]}]
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
lock_wait:
  description:
    - Seconds the run waited for the host lock (V(0) when it was free). Also returned when the run gives up after
      O(lock_timeout), then at most a few milliseconds over it.
  returned: always
  type: float
  sample: 0.0
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
    METHODS, MemoryHost, group_steps, leak_remedy, mb_view, plan_memory, pools_view, predict_pools,
    read_memory_blocks, reserved_bytes)
from ansible_collections.v3vee.palacios.plugins.module_utils.module import run_module
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import with_predictions


def memory_argument_spec():
    return argument_spec(
        node_mb=dict(type='dict'),
        total_mb=dict(type='int'),
        method=dict(type='str', default='hotremove', choices=list(METHODS)),
        below_4g=dict(type='bool', default=False),
        freed_vms=dict(type='list', elements='str', default=[]),
        timeout=dict(type='int', default=120),
    )


def step_view(step):
    view = dict(step)
    if 'base' in step:
        view['base'] = '0x%x' % step['base'] if step['base'] is not None else None
    return view


def freed_zones(snap, names):
    """The pools as they will be once the named VMs are freed (check mode: earlier tasks only predicted it)."""
    return with_predictions(snap, dict((e.index, None) for e in snap.guests if e.name in names)).zones


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
        host = MemoryHost(session.host.tools, session.host.reader, session.settings.palacios_dir, params['timeout'])
        info, zones = host.observe()
        if module.check_mode and params['freed_vms']:
            zones = freed_zones(session.host.reader.snapshot(memory=True), params['freed_vms'])
        nodes = info['nodes']
        plan = plan_memory(zones, info, target, read_memory_blocks(session.settings.sys_dir),
                           method=params['method'], below_4g=params['below_4g'])
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
            'steps': [step_view(s) for s in group_steps(steps)],
            'leaked_offline': [{'base': base, 'length': length} for base, length in leaks],
            'diff': {'before': {'reserved_mb': before_mb}, 'after': {'reserved_mb': after_mb}},
        }

    run_module(module, converge, timeout=params['timeout'])


if __name__ == '__main__':
    main()
