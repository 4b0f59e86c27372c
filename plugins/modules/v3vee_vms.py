#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: v3vee_vms
short_description: Converge every VM of a Palacios (V3VEE) host in one task
version_added: 0.2.0
description:
  - Brings a list of Palacios VMs to their desired states in one run, with one host lock and one inventory
    transaction. Each item of O(vms) takes the options of M(v3vee.palacios.v3vee_vm) and means exactly the
    same; the same planner and executor do the work.
  - One read of the proc directory plans every VM. Steps then run in waves - every V(continue), then every
    V(stop), V(free), V(create), V(launch), V(pause) - and each wave is verified by shared reads of
    C(v3-guests), so frees give back memory and slots before any create needs them.
  - One VM's failure does not stop the others. The task then fails and lists every error; the inventory
    records what the kernel shows for every VM.
  - With O(exclusive=true) the list is the host's whole VM set; every other VM goes.
author:
  - v3vee.palacios maintainers (@v3vee)
requirements:
  - the Palacios v3 tools C(v3_create), C(v3_launch), C(v3_pause), C(v3_continue), C(v3_stop) and C(v3_free) on the managed
    host (see O(tools_dir)), for any change in the kernel
  - the Palacios kernel module C(v3vee.ko) loaded, for any change in the kernel (records alone need neither)
  - root on the managed host (the v3 tools open root-only device nodes; the inventory is private)
  - Python 3.8 or later with the standard C(sqlite3) module on the managed host
options:
  vms:
    description:
      - The VMs, each with the options of M(v3vee.palacios.v3vee_vm) (without O(v3vee.palacios.v3vee_vm#module:wait)
        and O(v3vee.palacios.v3vee_vm#module:timeout), which are set once for the task).
      - Names must be unique in the list. Unknown keys, duplicate names, O(vms[].image) together with
        O(vms[].config) or O(vms[].config_xml), and invalid names, images or XML fail the task before any tool
        runs or any file is written.
      - Errors that belong to one VM (it needs O(vms[].force) or O(vms[].recreate), it is not in the inventory and
        has no definition, its step does not take effect, the batch leaves no memory or slot for its create) fail
        that VM; the others go on.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: VM name, the inventory's key (see M(v3vee.palacios.v3vee_vm)).
        type: str
        required: true
      state:
        description:
          - Desired state, as O(v3vee.palacios.v3vee_vm#module:state).
        type: str
        choices: [present, inactive, stopped, running, paused, absent, restarted]
        default: present
      image:
        description: Absolute path of a pre-built guest image, as O(v3vee.palacios.v3vee_vm#module:image).
        type: path
      config:
        description: Absolute path of a Palacios XML configuration, as O(v3vee.palacios.v3vee_vm#module:config).
        type: path
      config_xml:
        description:
          - The XML configuration itself, as O(v3vee.palacios.v3vee_vm#module:config_xml), kept in the managed
            directory beside the inventory.
        type: str
      config_options:
        description: C(opt_tag) overrides, as O(v3vee.palacios.v3vee_vm#module:config_options).
        type: dict
      recreate:
        description: Allow re-creating an active VM whose definition changed, as O(v3vee.palacios.v3vee_vm#module:recreate).
        type: bool
        default: false
      force:
        description: Allow stopping a running or paused VM for V(absent) or V(inactive), as
          O(v3vee.palacios.v3vee_vm#module:force).
        type: bool
        default: false
  exclusive:
    description:
      - Take every VM in the kernel or the inventory that O(vms) does not name to V(absent) (continue, stop, free,
        and its record removed).
      - A running or paused one is stopped only with O(force); without it the task fails naming them and
        nothing is done.
    type: bool
    default: false
  force:
    description:
      - With O(exclusive=true), allow stopping running or paused VMs that O(vms) does not name.
      - Listed VMs use their own O(vms[].force).
    type: bool
    default: false
  wait:
    description:
      - Poll the proc directory until each wave shows its result, up to O(timeout) seconds.
      - When V(false) each wave is verified by a single read.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each wave to show in the proc directory.
      - It is also each v3 tool run's deadline (V(v3_create) gets one more second per 16 MB of the image, or of the
        XML and its C(<file>)s, that it reads); see the notes.
    type: int
    default: 60
extends_documentation_fragment:
  - v3vee.palacios.common
  - v3vee.palacios.common.ATTRIBUTES
attributes:
  check_mode:
    description: Plans and predicts every VM (slots, memory, every step) without running tools.
    support: full
  diff_mode:
    description: Returns every VM before and after.
    support: full
notes:
  - Capacity is checked for the whole batch before any tool runs, as the kernel will see it - every free first,
    then each create in list order, taking the lowest free slot - so check mode predicts the slots a real run gets.
  - Because every free runs before any create, new VMs may get other slots than a loop of
    M(v3vee.palacios.v3vee_vm) tasks would give them; states, memory and records are the same.
seealso:
  - module: v3vee.palacios.v3vee_vm
  - module: v3vee.palacios.v3vee_inventory
'''

EXAMPLES = r'''
- name: A host's VMs, in one task
  v3vee.palacios.v3vee_vms:
    vms:
      - name: web1
        config: /srv/palacios/web.xml
        config_options:
          mem: 256
        state: running
      - name: db1
        image: /srv/palacios/db.img
        state: paused
      - name: scratch
        state: absent
        force: true

- name: This host runs exactly these VMs; every other one is stopped and deleted
  v3vee.palacios.v3vee_vms:
    vms:
      - name: web1
        config: /srv/palacios/web.xml
        state: running
    exclusive: true
    force: true

- name: Converge the VMs declared per host (see playbooks/provision.yml)
  v3vee.palacios.v3vee_vms:
    vms: "{{ palacios_vms }}"
  register: converged

- name: Show what changed
  ansible.builtin.debug:
    var: converged.summary
'''

RETURN = r'''
vms:
  description:
    - One result per VM, in O(vms) order, then the VMs O(exclusive) took to absent.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
      sample: web1
    changed:
      description: Whether anything changed for this VM (kernel or inventory).
      type: bool
      sample: true
    steps:
      description: Lifecycle steps run (or, in check mode, that would run) for this VM, in order.
      type: list
      elements: str
      sample: [create, launch]
    vm:
      description: The VM after the run, as RV(v3vee.palacios.v3vee_vm#module:vm) (after a failure, as the kernel shows it).
      type: dict
      sample: {name: web1, in_inventory: true, state: running, slot: 0, device: /dev/v3-vm0}
    unlisted:
      description: True for a VM O(vms) does not name, taken to absent by O(exclusive).
      type: bool
      sample: false
    error:
      description: Why this VM failed, or null.
      type: str
      sample: null
    guest_configs:
      description:
        - Files of the managed directory written or removed for this VM's O(vms[].config_xml) (in check mode, that would
          be), as RV(v3vee.palacios.v3vee_vm#module:guest_configs); lists C(written) and C(removed).
      type: dict
      sample: {written: [/var/lib/v3vee/configs/web3-3f2a9c0d1e4b5a67.xml], removed: []}
summary:
  description: Counts for the run.
  returned: always
  type: dict
  contains:
    vms:
      description: VMs handled (listed and unlisted).
      type: int
      sample: 32
    changed:
      description: VMs that changed.
      type: int
      sample: 32
    failed:
      description: VMs that failed.
      type: int
      sample: 0
    steps:
      description: How many times each lifecycle step ran (or would run).
      type: dict
      sample: {create: 32, launch: 32}
    states:
      description: How many VMs end in each state (V(running), V(paused), V(stopped), V(ERROR), V(inactive), V(absent)).
      type: dict
      sample: {running: 32}
errors:
  description: Every VM that failed, with its message.
  returned: when a VM failed
  type: list
  elements: dict
  sample: [{name: web2, msg: "launch of VM 'web2' did not take effect: /proc shows stopped, expected running"}]
commands:
  description: The v3 tool commands run for the whole batch, as argument lists, in the order they ran.
  returned: always
  type: list
  elements: list
  sample: [["/usr/local/bin/v3_create", "-b", "/srv/palacios/web.xml", "web1"], ["/usr/local/bin/v3_launch", "/dev/v3-vm0"]]
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
  sample: 0.42
diff:
  description: Every VM before and after (with C(--diff)), by name.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import GuestConfigs, converge_all_with_configs
from ansible_collections.v3vee.palacios.plugins.module_utils.module import run_module
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import VmJob, batch_result
from ansible_collections.v3vee.palacios.plugins.module_utils.vmspec import ITEM_RELATIONS, item_definition, vm_item_spec


def vms_argument_spec():
    item = dict(type='list', elements='dict', default=[], options=vm_item_spec(), **ITEM_RELATIONS)
    return argument_spec(
        vms=item,
        exclusive=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        wait=dict(type='bool', default=True),
        timeout=dict(type='int', default=60),
    )


def jobs_of(items, inventory_path):
    """One VmJob per item, and the inline configs to write: [(name, state, InlineConfig or None)].
    Bad input (duplicate names, names, images, XML) fails here, before the lock is taken or any
    tool runs."""
    seen = {}
    for index, item in enumerate(items):
        if item['name'] in seen:
            raise V3veeError('vms: %r is given twice (items %d and %d); each VM may appear once.'
                             % (item['name'], seen[item['name']] + 1, index + 1))
        seen[item['name']] = index
    jobs, inline = [], []
    for item in items:
        try:
            definition, shape, config = item_definition(item, inventory_path)
        except V3veeError as err:
            raise V3veeError('vms: %s: %s' % (item['name'], err), observed=err.observed)
        jobs.append(VmJob(item['name'], item['state'], definition, shape, item['force'], item['recreate']))
        inline.append((item['name'], item['state'], config))
    return jobs, inline


def main():
    module = AnsibleModule(argument_spec=vms_argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        jobs, inline = jobs_of(params['vms'], Settings.resolve(params).inventory_path)
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())

    def converge(session, store):
        configs = GuestConfigs(session.settings.inventory_path, check_mode=module.check_mode)
        done = converge_all_with_configs(configs, store, inline, lambda: session.host.converge_all(
            store, jobs, exclusive=params['exclusive'], force_unlisted=params['force']))
        return batch_result(done)

    run_module(module, converge, wait=params['wait'], timeout=params['timeout'])


if __name__ == '__main__':
    main()
