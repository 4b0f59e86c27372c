#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: v3vee_checkpoint
short_description: Save a Palacios VM to a checkpoint directory and restore it from one
version_added: 0.3.0
description:
  - Saves one Palacios VM of one host with V(v3_save) into a checkpoint directory, restores it with V(v3_load) into a
    fresh VM of the same config, or removes a checkpoint.
  - V(v3_save) and V(v3_load) exit 0 whatever the kernel did, also when Palacios was built without checkpoint support,
    so nothing is believed from them. A save goes into a fresh sibling directory C(.<name>.v3vee-saving) that did
    not exist before, is checked (C(header), C(memory_img) of the guest memory plus 12 bytes, a C(guest_info<N>) per
    vcore, C(devices)), gets a manifest and only then is renamed to O(path); a failed save never replaces an older
    checkpoint. A load is checked in C(v3-guests-details) - the restored vcores show the rip recorded at save (or,
    saved running, no longer the fresh VM's) - and every later step in C(v3-guests).
  - The directory is self-describing - its manifest C(v3vee-checkpoint.json) (mode C(0600)) holds the VM's
    definition at save (with the config XML text and its sha256), its state, the time, the store, the memory size,
    the vcores and every file's size and sha256 - so a checkpoint copied to another host can be checked and restored
    there (role M(v3vee.palacios.migrate) does that).
  - The inventory records every checkpoint (VM, path, store, time, state and definition at save);
    M(v3vee.palacios.v3vee_facts) lists them per VM, and M(v3vee.palacios.v3vee_inventory) O(v3vee.palacios.v3vee_inventory#module:recover)
    restores a VM from its latest checkpoint when that checkpoint was saved with O(recover=true).
author:
  - v3vee.palacios maintainers (@v3vee)
requirements:
  - the Palacios v3 tools C(v3_save) and C(v3_load), and for O(state=restored) C(v3_create), C(v3_launch),
    C(v3_pause), C(v3_continue), C(v3_stop) and C(v3_free) on the managed host (see O(tools_dir))
  - the Palacios kernel module C(v3vee.ko) built with C(CHECKPOINT), C(FILE) and C(KEYED_STREAMS), loaded
  - root on the managed host
  - Python 3.8 or later with the standard C(sqlite3) module on the managed host
options:
  name:
    description:
      - The VM, by its inventory name. For O(state=present) it must be in the inventory and in the kernel.
    type: str
    required: true
  path:
    description:
      - The checkpoint directory on the managed host (absolute). Its parent is created (mode C(0700)) when missing.
      - Palacios takes urls of at most 255 bytes, and the save goes through C(.<name>.v3vee-saving) beside it first,
        so that longer path must fit.
    type: path
    required: true
  store:
    description:
      - The Palacios checkpoint store. V(DIR) gives the directory itself as url (one file per context);
        V(KEYED_STREAM) gives C(file:<path>) (a keyed stream kept in that directory).
      - O(state=restored) needs the store the checkpoint was saved with.
    type: str
    choices: [DIR, KEYED_STREAM]
    default: DIR
  state:
    description:
      - V(present) - a checkpoint of the VM exists at O(path). Saved when missing; with O(force=true) saved again.
        A running VM keeps running (Palacios quiesces and resumes it), unless O(pause=true).
      - V(restored) - the VM is brought back from the checkpoint - a fresh VM created from the recorded definition
        (or, when the inventory has no record of the VM, from the manifest's), V(v3_load), then left as O(vm_state)
        says. Like V(restarted) of M(v3vee.palacios.v3vee_vm) it always acts. An existing VM of that name needs
        O(force=true) to be replaced.
      - V(absent) - the checkpoint at O(path) is removed (directory and inventory record).
    type: str
    choices: [present, restored, absent]
    default: present
  force:
    description:
      - For O(state=present), save again over an existing checkpoint (the new one replaces it only once it is
        complete).
      - For O(state=restored), replace an existing VM of that name (continue, stop and free it first).
    type: bool
    default: false
  vm_state:
    description:
      - For O(state=restored), the state the restored VM is left in - V(running) (launched, which resumes the saved
        state), V(paused) or V(stopped) (loaded, not launched).
    type: str
    choices: [running, paused, stopped]
    default: running
  pause:
    description:
      - For O(state=present), pause a running VM before the save and leave it paused, so that the checkpoint is its
        last state (nothing runs on after it). Use it before moving the VM to another host.
    type: bool
    default: false
  recover:
    description:
      - For O(state=present), whether M(v3vee.palacios.v3vee_inventory) O(v3vee.palacios.v3vee_inventory#module:recover)
        restores the VM from this checkpoint (when it is the VM's latest and the VM is not in the kernel) instead of
        booting it afresh. It asks once - a restore, by recover or by O(state=restored), clears it.
      - Not given, an existing checkpoint record keeps its setting and a new one does not ask.
    type: bool
  wait:
    description:
      - Poll the proc directory until each lifecycle step shows its result, up to O(timeout) seconds.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each step to show in the proc directory, and each v3 tool run's deadline
        (V(v3_save) and V(v3_load) get one more second per 16 MB of guest memory, V(v3_create) per 16 MB it reads).
    type: int
    default: 60
extends_documentation_fragment:
  - v3vee.palacios.common
  - v3vee.palacios.common.ATTRIBUTES
attributes:
  check_mode:
    description: Checks everything a real run checks first (the manifest and every file, the config, memory, slots,
      tools) and returns the steps it would run, without running a tool or writing anything.
    support: full
  diff_mode:
    description: Returns the checkpoint (O(state=present), O(state=absent)) or the VM (O(state=restored)) before and
      after.
    support: full
notes:
  - Steps - O(state=present) runs V(pause) (only with O(pause=true) on a running VM) and V(save);
    O(state=restored) runs the teardown of an existing VM (V(continue), V(stop), V(free), with O(force=true)), then
    V(create), V(load), and V(launch) (V(running)) or V(launch), V(pause) (V(paused)).
  - A kernel without checkpoint support (the V(v3_save)/V(v3_load) ioctl is unhandled) gives one error saying so;
    nothing is kept.
  - Before O(state=restored) runs any tool, every file the manifest lists is checked (size and sha256); a mismatch
    names the file. A record of the VM in this host's inventory must have the config the checkpoint was saved from
    (same sha256 and config_options), since Palacios only logs a load into a VM of another shape; without a record
    the manifest's config is used - the same file when this host has it with that sha256, else its XML written to
    the managed directory as for C(config_xml) of M(v3vee.palacios.v3vee_vm).
  - If the load does not show in C(v3-guests-details), the VM this run created is freed and the task fails with
    RV(failed_step=load).
  - A checkpoint saved while the VM ran holds the state of one instant of a running guest; its disks (if any) went
    on changing. Use O(pause=true) (or stop the VM) for a consistent pair.
seealso:
  - module: v3vee.palacios.v3vee_vm
  - module: v3vee.palacios.v3vee_inventory
  - module: v3vee.palacios.v3vee_facts
'''

EXAMPLES = r'''
- name: Save a running VM (it keeps running)
  v3vee.palacios.v3vee_checkpoint:
    name: web1
    path: /var/lib/v3vee/checkpoints/web1

- name: Before host maintenance - pause it, save it, and let recover restore it after the reboot
  v3vee.palacios.v3vee_checkpoint:
    name: web1
    path: /var/lib/v3vee/checkpoints/web1
    pause: true
    force: true
    recover: true

- name: Save with the keyed-stream file store
  v3vee.palacios.v3vee_checkpoint:
    name: db1
    path: /var/lib/v3vee/checkpoints/db1-ks
    store: KEYED_STREAM

- name: Restore it, replacing the VM of that name, and leave it paused
  v3vee.palacios.v3vee_checkpoint:
    name: web1
    path: /var/lib/v3vee/checkpoints/web1
    state: restored
    vm_state: paused
    force: true

- name: Remove the checkpoint
  v3vee.palacios.v3vee_checkpoint:
    name: web1
    path: /var/lib/v3vee/checkpoints/web1
    state: absent
'''

RETURN = r'''
checkpoint:
  description: The checkpoint's manifest (in check mode for a save, what is known before it) plus its O(path).
  returned: always
  type: dict
  contains:
    path:
      description: The checkpoint directory.
      type: str
      sample: /var/lib/v3vee/checkpoints/web1
    format:
      description: Manifest format.
      type: int
      sample: 1
    vm:
      description: The VM saved.
      type: str
      sample: web1
    definition:
      description: The VM's definition at save - C(image), C(config), C(config_options), C(config_xml) (the config's
        text) and C(sha256) (of the config, or of the image).
      type: dict
    vm_state:
      description: The VM's state right after the save.
      type: str
      sample: paused
    saved_at:
      description: When it was saved (UTC, ISO 8601).
      type: str
      sample: "2026-11-30T06:30:00.123456Z"
    store:
      description: The Palacios store.
      type: str
      sample: DIR
    url:
      description: The url Palacios loads it from.
      type: str
      sample: /var/lib/v3vee/checkpoints/web1
    memory_bytes:
      description: Guest memory saved.
      type: int
      sample: 134217728
    cores:
      description: Vcores saved.
      type: int
      sample: 1
    rips:
      description: The vcores' rip when the VM was saved paused or stopped (null when it ran).
      type: list
      elements: str
      sample: ["0x000000000000ff52"]
    files:
      description: Every file Palacios wrote, by name, with C(size) and C(sha256).
      type: dict
      sample: {header: {size: 47, sha256: "9f86d0..."}}
vm:
  description: The VM after the run, as M(v3vee.palacios.v3vee_vm) returns it.
  returned: always
  type: dict
steps:
  description: The steps run (in check mode, that would run) - C(pause), C(save), C(continue), C(stop), C(free),
    C(create), C(load), C(launch).
  returned: always
  type: list
  elements: str
  sample: [create, load, launch]
failed_step:
  description: The step that failed.
  returned: on failure after the run started
  type: str
  sample: load
commands:
  description: The v3 tool commands run, as argument lists.
  returned: always
  type: list
  elements: list
  sample: [["/usr/local/bin/v3_save", "/dev/v3-vm0", "DIR", "/var/lib/v3vee/checkpoints/.web1.v3vee-saving"]]
duration:
  description: Seconds the run took.
  returned: always
  type: float
  sample: 1.2
diff:
  description: Before and after (with C(--diff)).
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.checkpoint import STORES, VM_STATES, Checkpoints, check_path
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.module import run_module
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import validate_name


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            name=dict(type='str', required=True),
            path=dict(type='path', required=True),
            store=dict(type='str', default='DIR', choices=list(STORES)),
            state=dict(type='str', default='present', choices=['present', 'restored', 'absent']),
            force=dict(type='bool', default=False),
            vm_state=dict(type='str', default='running', choices=list(VM_STATES)),
            pause=dict(type='bool', default=False),
            recover=dict(type='bool'),
            wait=dict(type='bool', default=True),
            timeout=dict(type='int', default=60),
        ),
        supports_check_mode=True)
    params = module.params
    # Bad input fails here, before the lock is taken or any tool runs.
    try:
        validate_name(params['name'])
        path = check_path(params['path'], params['store'])
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())

    def body(session, store):
        ops = Checkpoints(session.host, store, session.settings.inventory_path, subprocess_runner,
                          kernel_log=session.settings.kernel_log)
        if params['state'] == 'present':
            return ops.save(params['name'], path, params['store'], force=params['force'], pause=params['pause'],
                            recover=params['recover'])
        if params['state'] == 'restored':
            return ops.restore(params['name'], path, params['store'], vm_state=params['vm_state'],
                               force=params['force'])
        return ops.remove(params['name'], path)

    run_module(module, body, wait=params['wait'], timeout=params['timeout'])


if __name__ == '__main__':
    main()
