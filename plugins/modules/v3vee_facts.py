#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: v3vee_facts
short_description: Gather facts about a Palacios (V3VEE) host, its memory, VMs and kernel messages
version_added: 0.1.0
description:
  - Sets C(ansible_facts.v3vee) with what a Palacios operator looks at
    before acting - whether the kernel module is loaded, where the v3 tools are, the host's NUMA
    layout and block sizes from C(v3-info), the memory Palacios holds per node from C(v3-mem<N>), every VM
    the kernel or the inventory knows with the Palacios GUI's category and drift, and the latest Palacios
    kernel messages (the GUI's telemetry pane).
  - Read-only and fast - no v3 tool is run, no host lock is taken, the inventory is opened read-only, and
    every C(/proc/v3vee) file is read at most once per run.
  - Never fails because Palacios is absent - a host without the kernel module, the tools or an
    inventory reports RV(ansible_facts.v3vee.module_loaded=false), empty lists and nulls. Anything
    present but unreadable (a foreign inventory database, a C(/proc) file that does not parse) is listed in
    RV(ansible_facts.v3vee.problems) and given as a warning.
author:
  - v3vee.palacios maintainers (@v3vee)
requirements:
  - none to run (a missing kernel module, tool or inventory is reported as absent)
  - read access to the proc directory, the inventory and the kernel log to see everything (root on a default host)
options:
  gather_subset:
    description:
      - Which facts to gather, as with M(ansible.builtin.setup). V(all), or any of V(tools), V(host), V(memory),
        V(vms), V(telemetry); prefix a name with C(!) to leave it out (V(!all) leaves out everything not named).
      - A subset named explicitly is gathered even if also excluded. Only exclusions mean everything else.
      - V(min) (always gathered) is RV(ansible_facts.v3vee.module_loaded), RV(ansible_facts.v3vee.control_device_present),
        RV(ansible_facts.v3vee.backend), RV(ansible_facts.v3vee.paths), RV(ansible_facts.v3vee.problems) and
        RV(ansible_facts.v3vee.gather_subset).
      - A subset left out has no key in the facts; one gathered but unavailable (the module is not loaded)
        is null.
    type: list
    elements: str
    default: [all]
  vm_mem_mb:
    description:
      - Guest memory sizes in MB for RV(ansible_facts.v3vee.memory.fits) - how many more VMs of each
        size the reserved memory can hold, by the rule M(v3vee.palacios.v3vee_vm) checks before a create
        (whole run-time blocks, ceil(size / block size) free blocks per VM).
    type: list
    elements: int
    default: [128]
  vm_details:
    description:
      - Also read C(v3-guests-details) and add each kernel VM's vcores (state, physical CPU, exits, mode) and
        memory regions (host physical ranges and NUMA node).
    type: bool
    default: false
  telemetry_lines:
    description: How many Palacios kernel messages to return (the latest; newest last). 1 to 10000.
    type: int
    default: 50
  telemetry_vm:
    description:
      - Only messages the kernel scoped to this VM (C(palacios (pcore N vm NAME ...))). Messages that only mention
        the VM in their text are not scoped to it.
    type: str
  telemetry_source:
    description:
      - Where to read kernel messages from.
      - V(auto) - the configured O(kernel_log) if set (the only source then, even while it does not exist yet); else
        the journal (C(journalctl -k), this boot), then C(dmesg), then C(/var/log/kern.log), then
        C(/var/log/messages) (what the GUI tailed). A source that shows no kernel messages at all (a container's
        journal, a refused C(dmesg)) is skipped.
      - V(file) - O(kernel_log), else C(/var/log/kern.log), else C(/var/log/messages).
      - V(journal) or V(dmesg) - only that.
    type: str
    choices: [auto, file, journal, dmesg]
    default: auto
  telemetry_exclude:
    description:
      - Regular expressions (Python C(re.search)) on the message text; matching messages are left out.
      - The default drops C(READ GUEST), which real Palacios logs on every read of C(v3-guests), so that the
        collection's own reads do not crowd out the kernel's reasons. Set V([]) to keep everything.
    type: list
    elements: str
    default: ['^READ GUEST']
  kernel_log:
    description:
      - A file that holds the kernel log, read instead of the system's (a simulated host writes C(kmsg.log) there).
      - Falls back to E(V3VEE_KERNEL_LOG), then C(V3VEE_KERNEL_LOG) in the host settings file.
    type: path
extends_documentation_fragment:
  - v3vee.palacios.common
  - v3vee.palacios.common.ATTRIBUTES
attributes:
  check_mode:
    description: The module only reads; it runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  facts:
    description: Sets C(ansible_facts.v3vee).
    support: full
notes:
  - O(lock_timeout) is accepted so that C(module_defaults) for the C(group/v3vee.palacios.v3vee) action group
    work; the module never takes the host lock. A concurrent change shows as it was at the moment each file
    was read.
  - Reading the proc files is cheap but not free - every read of C(v3-guests) logs C(READ GUEST) in the kernel log
    of real Palacios. The messages are read before the proc files, so a run never reports its own reads.
  - Telemetry bounds - the journal is asked for its last 10000 kernel messages, a log file is read backwards from
    its end for at most 16 MiB, C(dmesg) returns the kernel's ring buffer. RV(ansible_facts.v3vee.telemetry.truncated)
    says older Palacios messages were left out.
  - VM categories are the Palacios GUI's - V(active_inventory) (recorded and in the kernel), V(inactive_inventory)
    (recorded, not in the kernel), V(not_in_inventory) (in the kernel only, for example made with C(v3_create) on the
    command line). A record is matched to the VM in its recorded slot when the name agrees, else to the only kernel
    VM with its name; duplicate names are never guessed (drift V(duplicate_names)).
  - All facts live under one key, so a later run with fewer subsets replaces C(ansible_facts.v3vee) as a whole;
    C(register) the results to keep both (a registered result has them under C(ansible_facts.v3vee)).
  - For one VM's or every VM's data without setting facts, use M(v3vee.palacios.v3vee_vm_info).
  - The kernel allows several VMs with one name, so RV(ansible_facts.v3vee.vms) (a list) is complete, while
    RV(ansible_facts.v3vee.vms_by_name) leaves out names that several VMs carry (listed in
    RV(ansible_facts.v3vee.duplicate_names)).
seealso:
  - module: v3vee.palacios.v3vee_vm
  - module: v3vee.palacios.v3vee_inventory
  - module: ansible.builtin.setup
'''

EXAMPLES = r'''
- name: Gather Palacios facts
  v3vee.palacios.v3vee_facts:

- name: Is Palacios up, and how many more 512 MB guests fit?
  v3vee.palacios.v3vee_facts:
    gather_subset: [memory]
    vm_mem_mb: [128, 512]

- name: Show it
  ansible.builtin.debug:
    msg: >-
      module loaded: {{ ansible_facts.v3vee.module_loaded }},
      reserved: {{ (ansible_facts.v3vee.memory.reserved_bytes / 1048576) | int }} MB,
      512 MB VMs that still fit: {{ (ansible_facts.v3vee.memory.fits | selectattr('mem_mb', 'eq', 512) | first).vms }}
  when: ansible_facts.v3vee.module_loaded

- name: Everything but the kernel messages
  v3vee.palacios.v3vee_facts:
    gather_subset: ['!telemetry']

- name: VMs only, with vcore details
  v3vee.palacios.v3vee_facts:
    gather_subset: ['!all', vms]
    vm_details: true

- name: VMs that drifted from the inventory
  ansible.builtin.debug:
    msg: "{{ ansible_facts.v3vee.vms | selectattr('drift') | map(attribute='name') | list }}"

- name: VMs the inventory does not know (the GUI's "Not in inventory")
  ansible.builtin.debug:
    msg: "{{ ansible_facts.v3vee.vms | selectattr('category', 'eq', 'not_in_inventory') | map(attribute='device') | list }}"

- name: Why did web1 fail? Its last 20 kernel messages
  v3vee.palacios.v3vee_facts:
    gather_subset: [telemetry]
    telemetry_vm: web1
    telemetry_lines: 20
  register: web1_log

- name: Print them
  ansible.builtin.debug:
    var: web1_log.ansible_facts.v3vee.telemetry.lines

- name: Read a host whose settings file is not at the default path (a missing file is an error)
  v3vee.palacios.v3vee_facts:
  environment:
    V3VEE_HOST_CONF: /srv/v3vee-sim1/host.conf
'''

RETURN = r'''
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    v3vee:
      description: Everything gathered about the Palacios host. Keys of subsets left out by O(gather_subset) are absent.
      returned: always
      type: dict
      contains:
        gather_subset:
          description: The subsets gathered, after resolving O(gather_subset).
          type: list
          elements: str
          sample: [tools, host, memory, vms, telemetry]
        backend:
          description: V(palacios), or V(simulator) for a simulated host (from the host settings file).
          type: str
          sample: palacios
        module_loaded:
          description: Whether the Palacios kernel module is loaded (C(v3-info) exists in the proc directory).
          type: bool
          sample: true
        control_device_present:
          description: Whether the control device C(v3vee) exists in the device directory. A loaded module
            without it failed to initialise (insmod succeeds anyway).
          type: bool
          sample: true
        paths:
          description: The paths in use, resolved from the options, environment, host settings file and defaults.
          type: dict
          sample: {tools_dir: null, proc_dir: /proc/v3vee, dev_dir: /dev, inventory_path: /var/lib/v3vee/inventory.db,
                   palacios_dir: /opt/palacios, kernel_log: null, sys_dir: /sys,
                   host_conf: /etc/v3vee/host.conf,
                   lock_path: /var/lib/v3vee/inventory.db.lock}
        problems:
          description: Things that exist but could not be read or understood. Absence (no module, no tools, no
            inventory) is not a problem.
          type: list
          elements: str
          sample: []
        tools:
          description: The v3 tools the collection uses.
          returned: when the V(tools) subset is gathered
          type: dict
          contains:
            found:
              description: Tool name to path.
              type: dict
              sample: {v3_create: /opt/palacios/linux_usr/v3_create, v3_launch: /opt/palacios/linux_usr/v3_launch}
            missing:
              description: Tools not found.
              type: list
              elements: str
              sample: [v3_send, v3_receive]
            search_dirs:
              description: Where they were looked for (O(tools_dir) alone when set).
              type: list
              elements: str
              sample: [/opt/palacios/linux_usr]
        host:
          description: From C(v3-info) and C(v3-guests); null when the module is not loaded.
          returned: when the V(host) subset is gathered
          type: dict
          contains:
            nodes:
              description: NUMA nodes.
              type: int
              sample: 1
            cpus:
              description: CPUs.
              type: int
              sample: 4
            cpu_to_node:
              description: NUMA node of each CPU, indexed by CPU number.
              type: list
              elements: int
              sample: [0, 0, 0, 0]
            kernel_max_order:
              description: The kernel's C(MAX_ORDER).
              type: int
              sample: 11
            kernel_largest_alloc:
              description: Largest chunk in bytes the kernel allocator is asked for by C(v3_mem -k) (4096 * 2^(MAX_ORDER-1)).
              type: int
              sample: 4194304
            compiled_block_size:
              description: Palacios' compiled memory block size in bytes (the largest pool C(v3_mem -a) may add).
              type: int
              sample: 134217728
            runtime_block_size:
              description: Run-time memory block size in bytes (the C(mem_block_size) module option); guest memory is
                allocated in blocks of this size.
              type: int
              sample: 134217728
            max_vms:
              description: VM slots the kernel has (C(/dev/v3-vm0) to C(/dev/v3-vm31)).
              type: int
              sample: 32
            vm_slots_used:
              description: Slots in use.
              type: int
              sample: 2
            vm_slots_free:
              description: Slots free.
              type: int
              sample: 30
            broken_slots:
              description:
                - Ghost slots, C(<unable to get data for this VM>) in C(v3-guests) - left by a C(v3_create) that crashed
                  the kernel for want of pool memory. They count as used, C(v3_free) cannot remove them, and only a
                  reboot of the host clears them; each is also listed in RV(ansible_facts.v3vee.problems).
                - Per slot C(slot), C(name), C(device), C(remedy).
              type: list
              elements: dict
              sample: []
        memory:
          description: Memory Palacios holds, from C(v3-mem<N>); null when the module is not loaded.
          returned: when the V(memory) subset is gathered
          type: dict
          contains:
            block_size:
              description: Run-time block size in bytes.
              type: int
              sample: 134217728
            nodes:
              description: One entry per NUMA node.
              type: list
              elements: dict
              contains:
                node:
                  description: Node number.
                  type: int
                  sample: 0
                pools:
                  description: The buddy allocator's pools in address order; C(base) is a hex string (as C(v3_mem -r) takes it),
                    C(order) log2 of C(size), C(size) and C(free) in bytes.
                  type: list
                  elements: dict
                  sample: [{base: '0x000000007f400000', order: 22, size: 4194304, free: 4161536},
                           {base: '0x0000000008000000', order: 27, size: 134217728, free: 134217728}]
                pool_bytes:
                  description: Sum of the pool sizes, seed pool included.
                  type: int
                  sample: 138412032
                reserved_bytes:
                  description: Memory reserved for guests - the pool sizes less the one 4 MB seed pool Palacios makes per node at
                    load.
                  type: int
                  sample: 134217728
                free_bytes:
                  description: Free bytes in all pools, including what Palacios left of the seed pool.
                  type: int
                  sample: 138379264
                largest_free_block:
                  description: Bytes of the largest block the buddy allocator can hand out now (its highest non-empty free list).
                  type: int
                  sample: 134217728
                free_blocks:
                  description: Whole run-time blocks free on this node.
                  type: int
                  sample: 1
                fits:
                  description: For each O(vm_mem_mb), how many more VMs of that size this node's memory alone could hold.
                  type: list
                  elements: dict
                  sample: [{mem_mb: 128, blocks_per_vm: 1, vms: 1}]
            pool_bytes:
              description: Sum over nodes.
              type: int
              sample: 138412032
            reserved_bytes:
              description: Sum over nodes.
              type: int
              sample: 134217728
            free_bytes:
              description: Sum over nodes.
              type: int
              sample: 138379264
            free_blocks:
              description: Whole run-time blocks free on the host.
              type: int
              sample: 1
            largest_free_block:
              description: The largest over nodes.
              type: int
              sample: 134217728
            fits:
              description:
                - For each O(vm_mem_mb) - C(mem_mb), C(blocks_per_vm), C(vms_by_memory) (how many more VMs of that size the
                  free blocks hold), C(free_slots) and C(vms), the smaller of the two - how many more such VMs can be created.
              type: list
              elements: dict
              sample: [{mem_mb: 128, blocks_per_vm: 1, vms_by_memory: 1, free_slots: 30, vms: 1}]
        inventory:
          description: The inventory database as read.
          returned: when the V(vms) subset is gathered
          type: dict
          sample: {path: /var/lib/v3vee/inventory.db, exists: true, records: 2, checkpoints: 1, error: null}
        vms:
          description:
            - Every VM the kernel or the inventory knows, once, in the GUI's order - by category, then slot, then name.
          returned: when the V(vms) subset is gathered
          type: list
          elements: dict
          contains:
            name:
              description: VM name.
              type: str
              sample: web1
            category:
              description: V(active_inventory), V(inactive_inventory) or V(not_in_inventory).
              type: str
              sample: active_inventory
            in_inventory:
              description: Whether the inventory has a record for it.
              type: bool
              sample: true
            in_kernel:
              description: Whether the kernel has it.
              type: bool
              sample: true
            state:
              description: Kernel state from C(v3-guests) (V(stopped), V(running), V(paused), V(ERROR), V(UNKNOWN) while
                resetting), or V(inactive) when only recorded.
              type: str
              sample: running
            slot:
              description: Kernel slot (the N of C(/dev/v3-vmN)); null when not in the kernel.
              type: int
              sample: 0
            device:
              description: Device as the kernel reports it.
              type: str
              sample: /dev/v3-vm0
            vcores:
              description: Number of vcores.
              type: int
              sample: 1
            mem_bytes:
              description: Guest memory in bytes.
              type: int
              sample: 134217728
            mem_mb:
              description: Guest memory in MB.
              type: int
              sample: 128
            regions:
              description: Number of base memory regions (run-time blocks) the guest holds.
              type: int
              sample: 1
            type:
              description: V(general) or V(hvm).
              type: str
              sample: general
            image:
              description: Recorded image path.
              type: str
            config:
              description: Recorded XML config path.
              type: str
              sample: /srv/palacios/web1.xml
            config_options:
              description: Recorded C(opt_tag) overrides.
              type: dict
              sample: {}
            config_inline:
              description: Whether RV(ansible_facts.v3vee.vms[].config) is a file of the managed directory, written from
                O(v3vee.palacios.v3vee_vm#module:config_xml).
              type: bool
              sample: false
              version_added: 0.2.0
            definition:
              description: The recorded definition as another host can use it (null when not recorded), with the
                config's XML text and sha256; see M(v3vee.palacios.v3vee_vm_info).
              type: dict
              version_added: 0.3.0
            checkpoints:
              description:
                - The VM's checkpoints the inventory records (M(v3vee.palacios.v3vee_checkpoint)), oldest first - C(path),
                  C(store), C(url), C(saved_at), C(vm_state) (at save), C(memory_bytes), C(cores), C(recover) (whether
                  M(v3vee.palacios.v3vee_inventory) recover restores the VM from it; only the latest counts) and
                  C(exists) (whether the directory is still there).
              type: list
              elements: dict
              sample: [{path: /var/lib/v3vee/checkpoints/web1, store: DIR, url: /var/lib/v3vee/checkpoints/web1,
                        saved_at: "2026-11-30T06:30:00.123456Z", vm_state: paused, memory_bytes: 134217728, cores: 1,
                        recover: true, exists: true}]
              version_added: 0.3.0
            desired_state:
              description: Recorded desired state.
              type: str
              sample: running
            recorded_state:
              description: The kernel state the inventory last recorded.
              type: str
              sample: running
            recorded_slot:
              description: The slot the inventory recorded.
              type: int
              sample: 0
            recorded_device:
              description: The device the inventory recorded.
              type: str
              sample: /dev/v3-vm0
            created_at:
              description: When the record was created (UTC).
              type: str
            updated_at:
              description: When the record last changed (UTC).
              type: str
            drift:
              description:
                - How the record differs from the kernel - V(slot_gone) (recorded slot empty), V(slot_reused) (it holds
                  another VM), V(relinked) (found under its name in another slot), V(duplicate_names) (several kernel
                  VMs carry the name), V(state_changed) (recorded state is not the kernel's), V(not_desired_state)
                  (the kernel state is not the recorded desired state), V(broken_slot) (the recorded slot, or a kernel
                  line of this name, is a broken slot). Empty when in sync, and for VMs not in the inventory (except a
                  broken slot's own entry).
              type: list
              elements: str
              sample: []
            broken:
              description:
                - Whether this entry is a broken (ghost) slot, state V(UNAVAILABLE) - never a VM the modules act on. It is
                  left out of RV(ansible_facts.v3vee.vms_by_name) and RV(ansible_facts.v3vee.duplicate_names).
              type: bool
              sample: false
            remedy:
              description: For a broken slot, what to do (reboot the host); else null.
              type: str
              sample: null
            duplicate_name:
              description: Whether another entry of RV(ansible_facts.v3vee.vms) has the same name.
              type: bool
              sample: false
            cores:
              description:
                - With O(vm_details) - per vcore C(vcore), C(state), C(pcore), C(exits), C(rip), C(cpu_mode), C(mem_mode),
                  C(paging), C(vcore_type); null for VMs not in the kernel.
              returned: when O(vm_details=true)
              type: list
              elements: dict
              sample: [{vcore: 0, state: running, pcore: 0, exits: 15748, rip: '0x000000000000fff0', cpu_mode: real,
                        mem_mode: physical, paging: shadow, vcore_type: ''}]
            memory_regions:
              description: With O(vm_details) - per region C(region), C(hpa_start), C(hpa_end), C(node), C(gpa).
              returned: when O(vm_details=true)
              type: list
              elements: dict
              sample: [{region: 0, hpa_start: '0x0000000008000000', hpa_end: '0x0000000010000000', node: 0,
                        gpa: '0x0000000000000000'}]
        vms_by_name:
          description: The entries of RV(ansible_facts.v3vee.vms) by name, except names several VMs carry.
          returned: when the V(vms) subset is gathered
          type: dict
          sample: {web1: {name: web1, category: active_inventory, state: running, slot: 0}}
        duplicate_names:
          description: Names carried by more than one entry of RV(ansible_facts.v3vee.vms).
          returned: when the V(vms) subset is gathered
          type: list
          elements: str
          sample: []
        vm_counts:
          description: C(total), C(in_kernel), C(by_category) (all three categories), C(by_state), C(drifted), C(broken).
          returned: when the V(vms) subset is gathered
          type: dict
          sample: {total: 2, in_kernel: 1, by_category: {active_inventory: 1, inactive_inventory: 1, not_in_inventory: 0},
                   by_state: {running: 1, inactive: 1}, drifted: 0, broken: 0}
        telemetry:
          description: The latest Palacios kernel messages.
          returned: when the V(telemetry) subset is gathered
          type: dict
          contains:
            source:
              description: V(file), V(journal), V(dmesg), or null when no source had kernel messages.
              type: str
              sample: journal
            path:
              description: The file read, for V(file).
              type: str
              sample: /var/log/messages
            command:
              description: The command run, for V(journal) and V(dmesg).
              type: list
              elements: str
              sample: [/usr/bin/journalctl, -k, -q, -o, short-precise, --no-pager, -n, '10000']
            lines:
              description: The messages as the source printed them, newest last.
              type: list
              elements: str
              sample: ['[   12.345678] palacios (pcore 0 vm web1): V3 --  Starting VM (1 cores)']
            messages:
              description:
                - The same, parsed - C(pcore), C(vm) and C(vcore) (null unless VM or vcore scoped), C(location) (C(file.c(line)) of
                  a module error), C(message), C(uptime) (seconds since boot, when the line has the kernel's stamp), C(time)
                  and C(host) (as the journal or syslog printed them).
              type: list
              elements: dict
              sample: [{pcore: 0, vm: web1, vcore: null, location: null, message: 'V3 --  Starting VM (1 cores)',
                        uptime: 12.345678, time: null, host: null}]
            truncated:
              description: Whether older Palacios messages were left out.
              type: bool
              sample: true
            vm:
              description: O(telemetry_vm).
              type: str
            exclude:
              description: O(telemetry_exclude).
              type: list
              elements: str
              sample: ['^READ GUEST']
            tried:
              description: Sources passed over, and why.
              type: list
              elements: str
              sample: [journalctl not found]
            error:
              description: Why the configured O(kernel_log) could not be read (also in RV(ansible_facts.v3vee.problems)); null
                otherwise.
              type: str
'''

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.facts import gather, resolve_subsets
from ansible_collections.v3vee.palacios.plugins.module_utils.kmsg import DEFAULT_EXCLUDE, SOURCES
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner

MAX_TELEMETRY_LINES = 10000


def facts_argument_spec():
    return argument_spec(
        gather_subset=dict(type='list', elements='str', default=['all']),
        vm_mem_mb=dict(type='list', elements='int', default=[128]),
        vm_details=dict(type='bool', default=False),
        telemetry_lines=dict(type='int', default=50),
        telemetry_vm=dict(type='str'),
        telemetry_source=dict(type='str', default='auto', choices=list(SOURCES)),
        telemetry_exclude=dict(type='list', elements='str', default=list(DEFAULT_EXCLUDE)),
        kernel_log=dict(type='path'),
    )


def check_params(params):
    """Bad options fail; nothing about the host ever does."""
    subsets = resolve_subsets(params['gather_subset'])
    if not 1 <= params['telemetry_lines'] <= MAX_TELEMETRY_LINES:
        raise V3veeError('telemetry_lines must be between 1 and %d, not %d.'
                         % (MAX_TELEMETRY_LINES, params['telemetry_lines']))
    bad = [mb for mb in params['vm_mem_mb'] if mb < 1]
    if bad:
        raise V3veeError('vm_mem_mb sizes must be at least 1 MB: %s.' % ', '.join(str(mb) for mb in bad))
    for pattern in params['telemetry_exclude']:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise V3veeError('telemetry_exclude %r is not a regular expression: %s.' % (pattern, exc))
    return subsets


def main():
    module = AnsibleModule(argument_spec=facts_argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        subsets = check_params(params)
        settings = Settings.resolve(params)
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())
    facts = gather(settings, subprocess_runner, subsets=subsets,
                   vm_mem_mb=params['vm_mem_mb'], vm_details=params['vm_details'],
                   telemetry_lines=params['telemetry_lines'], telemetry_vm=params['telemetry_vm'],
                   telemetry_source=params['telemetry_source'], telemetry_exclude=params['telemetry_exclude'])
    for problem in facts['problems']:
        module.warn(problem)
    module.exit_json(changed=False, ansible_facts={'v3vee': facts})


if __name__ == '__main__':
    main()
