#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: v3vee_vm_info
short_description: Information about Palacios (V3VEE) virtual machines
version_added: 0.2.0
description:
  - Returns one VM (O(name)) or every VM the kernel or the host's inventory knows - kernel state, slot and device,
    vcores and memory, the recorded definition (image, config or inline config, C(opt_tag) overrides), the desired
    state and the drift between the inventory and the kernel.
  - Read-only and cheap - no v3 tool runs, the inventory is opened read-only and never created, C(v3-info) and
    C(v3-guests) are read once (C(v3-guests-details) too with O(vm_details)).
  - Waits (up to O(lock_timeout)) for a run that is changing the host, such as M(v3vee.palacios.v3vee_vm), so that
    the kernel and the inventory are read as that run left them rather than half-way; readers do not wait for each
    other.
  - Returns data, not facts; M(v3vee.palacios.v3vee_facts) sets host facts.
author:
  - v3vee.palacios maintainers (@v3vee)
requirements:
  - none to run (a missing kernel module or inventory is reported as absent; no v3 tool is needed)
  - read access to the proc directory and the inventory to see everything (root on a default host)
options:
  name:
    description:
      - Only the VM of this name. Without it, every VM.
      - The kernel allows several VMs with one name, so RV(vms) may hold more than one entry; a name nobody knows gives
        an empty RV(vms), not an error.
    type: str
  vm_details:
    description: Also read C(v3-guests-details) and return each kernel VM's vcores and memory regions.
    type: bool
    default: false
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
notes:
  - VM categories and drift codes are the ones M(v3vee.palacios.v3vee_facts) and M(v3vee.palacios.v3vee_inventory)
    report, computed by the same code.
seealso:
  - module: v3vee.palacios.v3vee_vm
  - module: v3vee.palacios.v3vee_facts
  - module: v3vee.palacios.v3vee_inventory
'''

EXAMPLES = r'''
- name: One VM
  v3vee.palacios.v3vee_vm_info:
    name: web1
  register: web1

- name: Restart it if it is not where its record wants it
  v3vee.palacios.v3vee_vm:
    name: web1
    state: "{{ web1.vms[0].desired_state }}"
  when: web1.vms | length == 1 and 'not_desired_state' in web1.vms[0].drift

- name: Every VM
  v3vee.palacios.v3vee_vm_info:
  register: all_vms

- name: Names of the running ones
  ansible.builtin.debug:
    msg: "{{ all_vms.vms | selectattr('state', 'eq', 'running') | map(attribute='name') | list }}"

- name: What another host needs to receive web1 (config XML and its sha256 included)
  ansible.builtin.set_fact:
    web1_definition: "{{ web1.vms[0].definition }}"

- name: VMs whose kernel state or slot drifted from the inventory
  ansible.builtin.debug:
    msg: "{{ all_vms.vms | selectattr('drift') | map(attribute='name') | list }}"
'''

RETURN = r'''
module_loaded:
  description: Whether the Palacios kernel module is loaded. When it is not, recorded VMs are listed as V(inactive).
  returned: always
  type: bool
  sample: true
inventory:
  description: The inventory as read - C(path), C(exists), C(records) (count), C(error) (why it could not be read, else null).
  returned: always
  type: dict
  sample: {path: /var/lib/v3vee/inventory.db, exists: true, records: 2, error: null}
vms:
  description: The VMs (only O(name)'s when given), in the Palacios GUI's order - by category, then slot, then name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
      sample: web1
    category:
      description: V(active_inventory) (recorded and in the kernel), V(inactive_inventory) (recorded only) or
        V(not_in_inventory) (in the kernel only).
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
      description: Kernel state (V(stopped), V(running), V(paused), V(ERROR), V(UNKNOWN) while resetting), or V(inactive)
        when only recorded.
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
      sample: /var/lib/v3vee/configs/web1-3f2a9c0d1e4b5a67.xml
    config_inline:
      description: Whether RV(vms[].config) was given inline (O(v3vee.palacios.v3vee_vm#module:config_xml)) and is kept in
        the managed directory.
      type: bool
      sample: true
    checkpoints:
      description: The VM's recorded checkpoints (M(v3vee.palacios.v3vee_checkpoint)), oldest first, as
        M(v3vee.palacios.v3vee_facts) lists them.
      type: list
      elements: dict
      version_added: 0.3.0
    config_options:
      description: Recorded C(opt_tag) overrides.
      type: dict
      sample: {mem: "512"}
    definition:
      description:
        - The recorded definition as another host can use it, null for VMs not in the inventory - C(image),
          C(config), C(config_options), C(config_inline), C(config_xml) (the config's text), C(config_sha256) (of its
          bytes) and C(config_error) (why the config could not be read here, else null).
        - M(v3vee.palacios.v3vee_live_migration) takes it as O(v3vee.palacios.v3vee_live_migration#module:definition).
      type: dict
      version_added: 0.3.0
      sample: {image: null, config: /srv/palacios/web1.xml, config_options: {}, config_inline: false,
               config_xml: "<vm class=\"PC\">...</vm>", config_sha256: "9f2c...", config_error: null}
    desired_state:
      description: Recorded desired state (what M(v3vee.palacios.v3vee_inventory) recover brings the VM back to).
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
      sample: "2026-11-21T10:00:00Z"
    updated_at:
      description: When the record last changed (UTC).
      type: str
      sample: "2026-11-21T10:05:00Z"
    drift:
      description:
        - How the record differs from the kernel - V(slot_gone), V(slot_reused), V(relinked), V(duplicate_names),
          V(state_changed), V(not_desired_state) (see M(v3vee.palacios.v3vee_inventory)). Empty when in sync, and for VMs
          not in the inventory.
      type: list
      elements: str
      sample: [not_desired_state]
    duplicate_name:
      description: Whether another VM has the same name (the kernel allows it).
      type: bool
      sample: false
    cores:
      description: Per vcore C(vcore), C(state), C(pcore), C(exits), C(rip), C(cpu_mode), C(mem_mode), C(paging), C(vcore_type);
        null for VMs not in the kernel.
      returned: when O(vm_details=true)
      type: list
      elements: dict
    memory_regions:
      description: Per region C(region), C(hpa_start), C(hpa_end), C(node), C(gpa); null for VMs not in the kernel.
      returned: when O(vm_details=true)
      type: list
      elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.facts import gather
from ansible_collections.v3vee.palacios.plugins.module_utils.lock import HostLock
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner


def info_argument_spec():
    return argument_spec(
        name=dict(type='str'),
        vm_details=dict(type='bool', default=False),
    )


def main():
    module = AnsibleModule(argument_spec=info_argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        settings = Settings.resolve(params)
        with HostLock(settings.lock_path, settings.lock_timeout, shared=True):
            facts = gather(settings, subprocess_runner, subsets=('vms',), vm_details=params['vm_details'])
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())
    for problem in facts['problems']:
        module.warn(problem)
    vms = [vm for vm in facts['vms'] if params['name'] is None or vm['name'] == params['name']]
    module.exit_json(changed=False, module_loaded=facts['module_loaded'], inventory=facts['inventory'], vms=vms)


if __name__ == '__main__':
    main()
