#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: v3vee_inventory
short_description: Manage a Palacios (V3VEE) host's VM inventory and bring VMs back after a reboot
version_added: 0.1.0
description:
  - Manages the host's VM inventory (the SQLite database at O(inventory_path)) as a whole, and its records.
  - Replaces the Palacios GUI's inventory functions - New VM and deleting an inactive VM (O(vms)), Activate
    of a VM that is "not in inventory" (O(adopt)), Reload (O(reconcile)), its file
    C(virtual_machines_list.txt) (O(gui_import), O(gui_export)) - and does the recovery after a reboot that
    the GUI promised but never did (O(recover)).
  - Only O(recover) runs v3 tools. Everything else changes records only, never the kernel.
  - "Operations given together run in this fixed order: O(gui_import), O(vms), O(adopt), O(reconcile),
    O(recover), O(gui_export). Everything up to O(reconcile) is decided before anything is written or any
    tool runs, so an error there changes nothing; the records are written in one transaction."
  - With no operation the module only reports the records, their categories and drift.
author:
  - v3vee.palacios maintainers (@v3vee)
requirements:
  - Python 3.8 or later with the standard C(sqlite3) module on the managed host
  - root on the managed host, or the owner of the private inventory (O(inventory_path))
  - for O(recover) only, the Palacios v3 tools C(v3_create), C(v3_launch), C(v3_pause), C(v3_continue), C(v3_stop) and
    C(v3_free) (see O(tools_dir)) and the Palacios kernel module C(v3vee.ko) loaded
options:
  vms:
    description:
      - Inventory records to add, change or remove, without touching the kernel (the GUI's New VM, and
        Delete of an inactive VM). Use M(v3vee.palacios.v3vee_vm) to change a VM in the kernel.
      - A new record whose name is in the kernel (exactly once) is linked to that VM, with its kernel state as
        the desired state; otherwise it is inactive with desired state V(inactive). An existing record keeps
        its desired state.
      - The image/config of an active VM cannot be changed here (the kernel VM was built from the recorded
        one); that is an error. M(v3vee.palacios.v3vee_vm) with O(v3vee.palacios.v3vee_vm#module:recreate=true)
        does it.
    type: list
    elements: dict
    suboptions:
      name:
        description: VM name. At most 127 bytes; no commas, TABs, newlines or other control characters.
        type: str
        required: true
      image:
        description:
          - Absolute path of a pre-built guest image. Mutually exclusive with O(vms[].config).
          - Required for a name that is not in the inventory, unless O(vms[].config) is given.
        type: path
      config:
        description: Absolute path of a Palacios XML configuration (validated as M(v3vee.palacios.v3vee_vm) does).
        type: path
      config_xml:
        description:
          - The XML configuration itself, written to the host's managed directory and recorded as the config, as
            M(v3vee.palacios.v3vee_vm) does with O(v3vee.palacios.v3vee_vm#module:config_xml) (same path, modes,
            validation and rules; changed content of an active VM's record is refused here).
          - Mutually exclusive with O(vms[].image) and O(vms[].config).
        type: str
        version_added: 0.2.0
      config_options:
        description: Overrides for elements of O(vms[].config) or O(vms[].config_xml) that carry an C(opt_tag) attribute.
        type: dict
      state:
        description:
          - V(present) - the record exists (with this image or config when given).
          - V(absent) - the record is removed. Removing the record of an active VM (one in the kernel) would
            leave that VM "not in inventory", so it is refused unless O(force=true); the VM keeps running.
        type: str
        choices: [present, absent]
        default: present
  adopt:
    description:
      - Kernel VMs to take into the inventory (the GUI's Activate of a "not in inventory" VM, for example one
        created with V(v3_create) on the command line), each with the image or config it was created from.
      - The record is linked to the VM's slot, with its current kernel state as the desired state (an V(ERROR)
        VM gets V(stopped)).
      - A name the kernel has several times is reported (RV(adopt[].result=duplicate_names)) and not adopted,
        since which VM is meant cannot be known; so is a name not in the kernel (V(not_in_kernel)) and a name
        already in the inventory (V(in_inventory)). None of these fails the task.
      - Kernel VMs that are not adopted are never given an invented definition; they are listed in
        RV(not_in_inventory).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the VM as C(/proc/v3vee/v3-guests) shows it.
        type: str
        required: true
      image:
        description: Absolute path of the pre-built guest image the VM was created from.
        type: path
      config:
        description: Absolute path of the XML configuration the VM was built from (C(v3_create -b)).
        type: path
      config_xml:
        description: The XML configuration it was built from, kept in the managed directory as with O(vms[].config_xml).
        type: str
        version_added: 0.2.0
      config_options:
        description: The C(opt_tag) overrides it was built with.
        type: dict
  reconcile:
    description:
      - Compare the proc directory with the records and make the records true (the GUI's Reload VMs).
      - A record is linked to the VM in its recorded slot when that VM has its name, else to the one kernel
        VM with its name (relinked); a record whose slot is gone or now holds another VM, and that has no
        unique namesake, becomes inactive. Recorded kernel states are updated.
      - Desired states are not changed (they are what O(recover) restores). Every drift is reported in
        RV(reconcile) and RV(drift).
    type: bool
    default: false
  recover:
    description:
      - Bring every recorded VM whose desired state is V(stopped), V(running) or V(paused) to that state, as
        M(v3vee.palacios.v3vee_vm) would - after a reboot that means create, launch, pause as needed; a VM that
        drifted is continued, paused or stopped; a VM in V(ERROR) is freed and re-created.
      - Records with desired state V(inactive) are left alone, even when their VM is in the kernel; recover
        never tears a live VM down.
      - VMs are recreated in the order of the slots they were recorded in, so that after a reboot they get
        the same C(/dev/v3-vmN) back; VMs without a recorded slot follow by name.
      - Recover does not reserve memory (M(v3vee.palacios.v3vee_memory) does); a VM that does not fit fails
        with the engine's message. Recover continues with the next VM after a failure, and fails at the
        end listing every error (RV(errors)); each VM's outcome is in RV(recover).
      - Idempotent - VMs already in their desired state are not touched.
      - A VM that is not in the kernel and whose latest checkpoint was saved with
        O(v3vee.palacios.v3vee_checkpoint#module:recover=true) is restored from that checkpoint instead of booted
        afresh, as M(v3vee.palacios.v3vee_checkpoint) O(v3vee.palacios.v3vee_checkpoint#module:state=restored) does
        (create, load, then launch and pause as its desired state says; every file checked against the manifest
        first, the load verified in C(v3-guests-details)). These restores run before the other VMs. A restore
        clears the request, so a later reboot boots the VM afresh unless a new checkpoint asks again; a checkpoint
        that fails its checks is an error for that VM, never a silent fresh boot.
    type: bool
    default: false
  gui_import:
    description:
      - Import the Palacios GUI's inventory file (C(virtual_machines_list.txt), lines
        C(name,config,dev,state,image), state C(0) stopped, C(1) paused, C(2) running).
      - Every line is validated. Bad lines (blank, short, more than five fields because of a comma in a
        field, a bad state digit, a bad name or dev, neither config nor image, not UTF-8) are reported with
        their line numbers in RV(gui_import.bad_lines) and as warnings, and skipped; so is every line of a
        name that occurs more than once. CRLF line ends and a missing final newline are accepted.
      - Relative paths (the GUI stored image basenames relative to its working directory, which is where
        its file is) are resolved against the file's directory.
      - A new name becomes a record. Its desired state is the line's state (V(inactive) for state C(0) with
        an empty dev - a VM the GUI's wizard added and nobody activated); it is linked to the kernel VM of that
        name when the line's dev or a unique name finds it. The GUI file has no C(config_options).
      - A name already in the inventory whose image, config or state differs is a conflict, resolved by
        O(import_conflict). Records not in the file are kept (listed in RV(gui_import.not_in_file)).
    type: path
  import_conflict:
    description:
      - What O(gui_import) does when a line differs from an existing record (image, config, or state; the
        file cannot tell V(inactive) from V(stopped) for a VM without dev, so those do not conflict).
      - V(keep) - the record is kept; the conflict is reported (RV(gui_import.conflicts)) and warned about.
        The default, because the GUI file has no timestamps, and the GUI rewrites the whole file on every
        change, so neither a line nor the file's modification time can show that a line is newer than the
        record.
      - V(replace) - the line wins and the conflict is reported. The image/config of an active VM is never
        replaced (its kernel VM was built from the recorded one), only its desired state.
      - V(fail) - nothing is imported or changed and the task fails, listing every conflict.
    type: str
    choices: [keep, replace, fail]
    default: keep
  gui_export:
    description:
      - Write the inventory to this path in the GUI's format, so that the GUI can be used beside the
        collection. Runs last, so it shows the result of every other operation.
      - One line per record, sorted by name. Dev and state come from the proc directory, not from the
        records (the GUI's own states drift); ERROR and other kernel states are written as C(0). An inactive
        VM has an empty dev and the digit of its desired state (C(0) for V(inactive) and V(stopped)).
      - A VM built from a config only has an empty image field - the GUI can list it but not activate it
        (the GUI runs C(v3_create <image> <name>) and uses the config only for display). C(config_options)
        cannot be written. A record whose path contains a comma or control character is left out and
        reported in RV(gui_export.skipped).
      - The file is written only when its content changes, atomically (a temporary file in the same
        directory, then a rename, as the GUI does); an existing file keeps its mode and owner, a new one gets
        mode C(0644). The directory must exist. The GUI does not lock the file - do not save from the GUI while
        a playbook exports.
      - The same path as O(gui_import) synchronises both ways (import first, export last); then the file
        need not exist yet.
    type: path
  force:
    description: Allow O(vms[].state=absent) to remove the record of an active VM (the VM stays in the kernel).
    type: bool
    default: false
  wait:
    description:
      - For O(recover), poll the proc directory until each step shows its result, up to O(timeout) seconds.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each O(recover) step to show in the proc directory.
      - It is also each v3 tool run's deadline (V(v3_create) gets one more second per 16 MB of the image, or of the
        XML and its C(<file>)s, that it reads); see the notes. A VM whose tool
        is killed fails alone; the other VMs are still recovered, so one hung VM costs at most its deadline.
    type: int
    default: 60
extends_documentation_fragment:
  - v3vee.palacios.common
  - v3vee.palacios.common.ATTRIBUTES
attributes:
  check_mode:
    description:
      - Plans and predicts every operation without writing the inventory, running tools or writing the GUI
        file. O(recover) predicts the slot each VM gets and stops where a real run would run out of memory.
    support: full
  diff_mode:
    description: Returns the records before and after and, with O(gui_export), the file before and after.
    support: full
notes:
  - "Inventory categories are the GUI's: V(active_inventory) (recorded and in the kernel),
    V(inactive_inventory) (recorded, not in the kernel), V(not_in_inventory) (in the kernel, not recorded)."
  - "Drift codes: V(slot_gone) the recorded slot is empty; V(slot_reused) it holds another VM; V(relinked) the
    VM was found under its name in another slot; V(duplicate_names) several kernel VMs carry the name and none
    is chosen; V(state_changed) the recorded kernel state is out of date; V(not_desired_state) the kernel state
    differs from the desired state; V(broken_slot) the recorded slot, or a kernel line with the name, is a broken slot."
  - "A broken (ghost) slot - C(<unable to get data for this VM>) in C(v3-guests), left by a C(v3_create) that crashed
    the kernel for want of pool memory - is never linked, adopted or acted on: a record pointing at it becomes
    inactive, recover of a VM with its name fails and runs nothing, and RV(broken_slots) and a warning give the
    remedy (only a reboot of the host clears it)."
  - The kernel allows several VMs with one name; the inventory does not, and never guesses between them.
seealso:
  - module: v3vee.palacios.v3vee_vm
  - module: v3vee.palacios.v3vee_facts
'''

EXAMPLES = r'''
- name: Define VMs in the inventory only (the GUI's "New VM"); activate them later with v3vee_vm
  v3vee.palacios.v3vee_inventory:
    vms:
      - name: web1
        config: /srv/palacios/web.xml
        config_options:
          mem: 512
      - name: db1
        image: /srv/palacios/db1.img

- name: Define a VM whose XML is a template on the controller
  v3vee.palacios.v3vee_inventory:
    vms:
      - name: web2
        config_xml: "{{ lookup('ansible.builtin.template', 'web.xml.j2') }}"

- name: Forget an inactive VM's record
  v3vee.palacios.v3vee_inventory:
    vms:
      - name: old-test
        state: absent

- name: Adopt VMs created with v3_create on the command line
  v3vee.palacios.v3vee_inventory:
    adopt:
      - name: scratch
        image: /srv/palacios/scratch.img
      - name: lab
        config: /srv/palacios/lab.xml
  register: adopted

- name: Show what is still not in the inventory
  ansible.builtin.debug:
    var: adopted.not_in_inventory

- name: Make the records true after VMs were freed behind the collection's back (the GUI's "Reload")
  v3vee.palacios.v3vee_inventory:
    reconcile: true
  register: reloaded

- name: After a reboot, bring every VM back to its recorded state (after the module and memory are back)
  v3vee.palacios.v3vee_inventory:
    reconcile: true
    recover: true
    timeout: 120

- name: Migrate from the GUI - import its file, keeping the inventory where they differ
  v3vee.palacios.v3vee_inventory:
    gui_import: /home/palacios/virtual_machines_list.txt
  register: imported

- name: Report lines the GUI file could not give
  ansible.builtin.debug:
    var: imported.gui_import.bad_lines

- name: Keep the GUI usable beside the collection - import its changes, export the result
  v3vee.palacios.v3vee_inventory:
    gui_import: /home/palacios/virtual_machines_list.txt
    import_conflict: replace
    gui_export: /home/palacios/virtual_machines_list.txt

- name: Only report the inventory and its categories
  v3vee.palacios.v3vee_inventory:
  register: inv
'''

RETURN = r'''
records:
  description: Every inventory record after the run (in check mode, as a real run would leave it), sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
      sample: web1
    image:
      description: Recorded image path.
      type: str
      sample: /srv/palacios/web1.img
    config:
      description: Recorded XML config path.
      type: str
      sample: /srv/palacios/web1.xml
    config_options:
      description: Recorded C(opt_tag) overrides.
      type: dict
      sample: {mem: "512"}
    slot:
      description: Recorded kernel slot (the N of C(/dev/v3-vmN)), null when inactive.
      type: int
      sample: 0
    device:
      description: Recorded device.
      type: str
      sample: /dev/v3-vm0
    observed_state:
      description: Recorded kernel state (V(inactive) when not in the kernel).
      type: str
      sample: running
    desired_state:
      description: The state O(recover) brings the VM back to (V(inactive), V(stopped), V(running), V(paused)).
      type: str
      sample: running
    created_at:
      description: When the record was created (UTC).
      type: str
      sample: "2026-11-21T10:00:00Z"
    updated_at:
      description: When the record last changed (UTC).
      type: str
      sample: "2026-11-21T10:05:00Z"
    category:
      description: V(active_inventory) or V(inactive_inventory), from the proc directory.
      type: str
      sample: active_inventory
    state:
      description: Kernel state now, from the proc directory, or V(inactive).
      type: str
      sample: running
summary:
  description: Per category (V(active_inventory), V(inactive_inventory), V(not_in_inventory)) the number of VMs and their names.
  returned: always
  type: dict
  sample:
    active_inventory: {count: 1, names: [web1]}
    inactive_inventory: {count: 1, names: [db1]}
    not_in_inventory: {count: 1, names: [scratch]}
not_in_inventory:
  description: Kernel VMs without a record after the run (nothing is invented for them).
  returned: always
  type: list
  elements: dict
  sample: [{name: scratch, slot: 2, device: /dev/v3-vm2, state: running, broken: false}]
broken_slots:
  description: Broken (ghost) slots in the kernel after the run, each with C(slot), C(name), C(device) and C(remedy).
  returned: always
  type: list
  elements: dict
  sample: []
drift:
  description: Drift codes (see the notes) of every record that differed from the kernel when the run started.
  returned: always
  type: dict
  sample: {web1: [slot_gone, state_changed, not_desired_state]}
vms:
  description: What O(vms) did per item, in order.
  returned: when O(vms) is given
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    action:
      description: V(created), V(updated), V(removed) or V(unchanged).
      type: str
    drift:
      description: Drift codes found while linking a record to the kernel (for example V(duplicate_names)).
      type: list
      elements: str
      returned: unless the record was removed or absent
  sample: [{name: web1, action: created, drift: []}]
adopt:
  description: What O(adopt) did per item, in order.
  returned: when O(adopt) is given
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    result:
      description: V(adopted), V(in_inventory), V(not_in_kernel), V(duplicate_names) or V(broken_slot) (the name is
        only on a broken slot, which is never adopted).
      type: str
    devices:
      description: Devices of the kernel VMs with that name.
      type: list
      elements: str
  sample: [{name: scratch, result: adopted, devices: [/dev/v3-vm2]}]
reconcile:
  description: One entry per record, with its drift and whether the record was corrected.
  returned: when O(reconcile=true)
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    category:
      description: Category found.
      type: str
    drift:
      description: Drift codes.
      type: list
      elements: str
    changed:
      description: Whether the record was corrected.
      type: bool
    device:
      description: Device recorded now (null when inactive).
      type: str
    state:
      description: Kernel state recorded now.
      type: str
  sample: [{name: web1, category: inactive_inventory, drift: [slot_gone, state_changed], changed: true, device: null, state: inactive}]
recover:
  description: What O(recover) did per record, in the order it acted.
  returned: when O(recover=true)
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    desired_state:
      description: The recorded desired state.
      type: str
    action:
      description: Planned action - V(converge) (steps to run), V(in_state), V(skip) (desired V(inactive)) or
        V(error) (could not be planned, for example duplicate names).
      type: str
    state_before:
      description: Kernel state found (V(inactive) when not in the kernel).
      type: str
    steps:
      description: Lifecycle steps run (or predicted in check mode).
      type: list
      elements: str
    changed:
      description: Whether the VM or its record changed.
      type: bool
    state:
      description: Kernel state after recovery (V(inactive) when not in the kernel).
      type: str
    device:
      description: Device after recovery.
      type: str
    error:
      description: The error for this VM, or null.
      type: str
    reason:
      description: Why a VM was skipped.
      type: str
      returned: when skipped
    checkpoint:
      description: The checkpoint directory the VM was restored from (its steps then include V(load)), or null.
      type: str
      version_added: 0.3.0
  sample: [{name: web1, desired_state: running, action: converge, state_before: inactive, steps: [create, launch],
            changed: true, state: running, device: /dev/v3-vm0, error: null, checkpoint: null}]
errors:
  description: Every VM O(recover) failed for, with the message (the task fails when this is not empty).
  returned: when recover failed for a VM
  type: list
  elements: dict
  sample: [{name: db1, msg: "Not enough memory reserved for Palacios to create 'db1' ..."}]
gui_import:
  description: What O(gui_import) did.
  returned: when O(gui_import) is given
  type: dict
  contains:
    path:
      description: The file.
      type: str
    imported:
      description: Names that became new records.
      type: list
      elements: str
    replaced:
      description: Names whose record the file replaced (O(import_conflict=replace)).
      type: list
      elements: str
    unchanged:
      description: Names whose record already matched.
      type: list
      elements: str
    conflicts:
      description: Lines that differ from their record - C(line), C(name), C(differences) (per field the
        C(inventory) and C(file) values), C(resolution) (V(kept), V(replaced), V(state_replaced)) and,
        where a line could not win, C(reason).
      type: list
      elements: dict
    bad_lines:
      description: Lines not imported - C(line) (number, from 1), C(text), C(reason).
      type: list
      elements: dict
      sample: [{line: 3, text: "web3,/srv/web3.xml", reason: "short line: 2 field(s), ..."}]
    not_in_file:
      description: Recorded names the file does not have (they are kept).
      type: list
      elements: str
gui_export:
  description: What O(gui_export) did.
  returned: when O(gui_export) is given
  type: dict
  contains:
    path:
      description: The file.
      type: str
    changed:
      description: Whether the file was (or in check mode would be) rewritten.
      type: bool
    lines:
      description: Number of VMs written.
      type: int
    skipped:
      description: Records left out (C(name), C(reason)).
      type: list
      elements: dict
commands:
  description: The v3 tool commands run (by O(recover)), as argument lists.
  returned: always
  type: list
  elements: list
  sample: [["/usr/local/bin/v3_create", "/srv/palacios/db1.img", "db1"], ["/usr/local/bin/v3_launch", "/dev/v3-vm0"]]
guest_configs:
  description:
    - Files of the managed directory written for O(vms[].config_xml) and O(adopt[].config_xml), and removed because no
      record refers to them any more (in check mode, that would be).
  returned: always
  type: dict
  version_added: 0.2.0
  sample: {written: [/var/lib/v3vee/configs/web2-3f2a9c0d1e4b5a67.xml], removed: []}
duration:
  description: Seconds the run took.
  returned: always
  type: float
  sample: 0.42
diff:
  description: The records before and after and, with O(gui_export), the file before and after (with C(--diff)).
  returned: when diff mode is on
  type: list
  elements: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import checked_definition
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory_run import InventoryRun
from ansible_collections.v3vee.palacios.plugins.module_utils.module import run_module
from ansible_collections.v3vee.palacios.plugins.module_utils.records import IMPORT_POLICIES
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import validate_name

_DEFINITION = dict(
    image=dict(type='path'),
    config=dict(type='path'),
    config_xml=dict(type='str'),
    config_options=dict(type='dict'),
)


def inventory_argument_spec():
    vm_options = dict(name=dict(type='str', required=True),
                      state=dict(type='str', default='present', choices=['present', 'absent']), **_DEFINITION)
    adopt_options = dict(name=dict(type='str', required=True), **_DEFINITION)
    return argument_spec(
        vms=dict(type='list', elements='dict', options=vm_options,
                 mutually_exclusive=[('image', 'config', 'config_xml')]),
        adopt=dict(type='list', elements='dict', options=adopt_options,
                   mutually_exclusive=[('image', 'config', 'config_xml')],
                   required_one_of=[('image', 'config', 'config_xml')]),
        reconcile=dict(type='bool', default=False),
        recover=dict(type='bool', default=False),
        gui_import=dict(type='path'),
        import_conflict=dict(type='str', default='keep', choices=list(IMPORT_POLICIES)),
        gui_export=dict(type='path'),
        force=dict(type='bool', default=False),
        wait=dict(type='bool', default=True),
        timeout=dict(type='int', default=60),
    )


def checked_items(option, items, inventory_path):
    """Names (valid, each once per option) and definitions (validated as v3vee_vm does), where given."""
    out, seen = [], set()
    for item in items or []:
        name = validate_name(item['name'])
        if name in seen:
            raise V3veeError('%s lists %r twice.' % (option, name))
        seen.add(name)
        state = item.get('state', 'present')
        definition = inline = None
        if state == 'present':
            definition, inline = checked_definition(
                name, inventory_path, image=item['image'], config=item['config'], config_xml=item['config_xml'],
                config_options=item['config_options'])[::2]
        out.append({'name': name, 'state': state, 'definition': definition, 'inline': inline})
    return out


def checked_params(params):
    """Input errors fail here, before the lock is taken or anything is read."""
    inventory_path = Settings.resolve(params).inventory_path
    checked = dict(params, vms=checked_items('vms', params['vms'], inventory_path),
                   adopt=checked_items('adopt', params['adopt'], inventory_path))
    # A file to sync with (the same path exported) may not exist yet; a file only imported must.
    if params['gui_import'] and not os.path.isfile(params['gui_import']) \
            and (os.path.exists(params['gui_import']) or params['gui_import'] != params['gui_export']):
        raise V3veeError('gui_import: %s does not exist or is not a file.' % params['gui_import'])
    if params['gui_export']:
        directory = os.path.dirname(os.path.abspath(params['gui_export']))
        if os.path.isdir(params['gui_export']) or not os.path.isdir(directory):
            raise V3veeError('gui_export: %s must be a file in an existing directory.' % params['gui_export'])
    return checked


def main():
    module = AnsibleModule(argument_spec=inventory_argument_spec(), supports_check_mode=True)
    try:
        params = checked_params(module.params)
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())

    def body(session, store):
        return InventoryRun(session, store, params).run()

    run_module(module, body, wait=params['wait'], timeout=params['timeout'])


if __name__ == '__main__':
    main()
