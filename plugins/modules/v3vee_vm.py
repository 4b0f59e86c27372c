#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: v3vee_vm
short_description: Manage the lifecycle of a Palacios (V3VEE) virtual machine
version_added: 0.1.0
description:
  - Brings one Palacios VM to a desired state, idempotently, and keeps the host's VM inventory
    (an SQLite database, see O(inventory_path)) true to what the kernel shows.
  - Runs the Palacios v3 tools (V(v3_create), V(v3_launch), V(v3_pause), V(v3_continue), V(v3_stop),
    V(v3_free)) with argument lists and verifies every step in C(v3-guests), because their exit codes lie.
  - Replaces the Palacios GUI's New VM, Activate, Start, Pause, Continue, Stop and Delete actions.
  - A VM that is in the kernel but not in the inventory (created on the command line; the GUI's
    "not in inventory") is adopted when O(image) or O(config) is given.
author:
  - v3vee.palacios maintainers (@v3vee)
options:
  name:
    description:
      - VM name, the inventory's key. At most 127 bytes (Palacios keeps no more); no commas, TABs,
        newlines or other control characters.
    type: str
    required: true
  state:
    description:
      - V(present) - the VM is in the inventory; the kernel is not touched.
      - V(inactive) - in the inventory and not in the kernel (stopped and freed as needed).
      - V(stopped) - activated (created in the kernel) and not running.
      - V(running) - created and launched. A VM stopped after running is relaunched, which resumes it.
      - V(paused) - created, launched and paused.
      - V(absent) - gone from the kernel and the inventory.
      - V(restarted) - always freed and re-created from its image or config, then launched (a fresh boot).
      - See the notes for what each state does from each observed state.
    type: str
    choices: [present, inactive, stopped, running, paused, absent, restarted]
    default: present
  image:
    description:
      - Absolute path of a pre-built Palacios guest image, created with C(v3_create <image> <name>).
      - Required to define a VM that is not in the inventory, unless O(config) is given.
      - Mutually exclusive with O(config).
    type: path
  config:
    description:
      - Absolute path of a Palacios XML configuration, built into an image by C(v3_create -b) in the XML's
        directory, so relative C(<file filename>) paths resolve against that directory.
      - It is validated first (well-formed, C(class="PC"), C(<memory>), C(<cores count>), every C(<file>)
        present), because V(v3_create -b) crashes on a bad XML.
    type: path
  config_options:
    description:
      - Overrides for elements of O(config) that carry an C(opt_tag) attribute, passed as C(tag=value).
      - Every key must match an C(opt_tag) in the XML.
    type: dict
  recreate:
    description:
      - Allow freeing and re-creating an active VM whose O(image), O(config) or O(config_options) differ
        from the inventory record. Without it such a change is an error, never a silent no-op.
    type: bool
    default: false
  force:
    description:
      - Allow O(state=absent) or O(state=inactive) to stop a running or paused VM (continue, stop, free).
        Without it the module refuses, as the Palacios GUI refuses to delete a running VM.
    type: bool
    default: false
  wait:
    description:
      - Poll the proc directory until each step shows its result, up to O(timeout) seconds.
      - When V(false) each step is verified by a single read.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each step to show in the proc directory.
    type: int
    default: 60
extends_documentation_fragment:
  - v3vee.palacios.common
  - v3vee.palacios.common.ATTRIBUTES
attributes:
  check_mode:
    description: Plans and predicts the result (including the slot a new VM will get) without running tools.
    support: full
  diff_mode:
    description: Returns the VM before and after.
    support: full
notes:
  - "What each O(state) does from each observed kernel state (the inventory record is written, updated or
    removed as well):"
  - From not in the kernel - C(present) nothing; C(inactive) nothing; C(stopped) create; C(running) create, launch;
    C(paused) create, launch, pause; C(absent) nothing; C(restarted) create, launch.
  - From stopped - C(present) nothing; C(inactive) free; C(stopped) nothing; C(running) launch; C(paused) launch,
    pause; C(absent) free; C(restarted) free, create, launch.
  - From running - C(present) nothing; C(inactive) stop, free (needs force); C(stopped) stop; C(running) nothing;
    C(paused) pause; C(absent) stop, free (needs force); C(restarted) stop, free, create, launch.
  - From paused - C(present) nothing; C(inactive) continue, stop, free (needs force); C(stopped) continue, stop;
    C(running) continue; C(paused) nothing; C(absent) continue, stop, free (needs force); C(restarted) continue,
    stop, free, create, launch.
  - From ERROR - C(present) nothing; C(inactive) free; C(stopped) free, create; C(running) free, create, launch;
    C(paused) free, create, launch, pause; C(absent) free; C(restarted) free, create, launch.
  - A paused VM is continued before it is stopped, because Palacios silently ignores stopping a paused VM.
  - With O(recreate=true) and a changed definition, an active VM is torn down (as above) and built again to
    the requested state (for O(state=present), to the state it had).
  - The kernel allows several VMs with one name; the inventory does not. A VM is found by its recorded
    device slot first, then by a unique name; two kernel VMs with the name are an error.
  - Creating checks first that Palacios has enough reserved memory (whole blocks of the run-time block size),
    a free slot of the 32, and no more vcores than host CPUs. The memory check is a safety rule - on real
    Palacios a C(v3_create) the pools cannot hold crashes the kernel and leaves a broken slot.
  - A broken slot (C(<unable to get data for this VM>) in C(v3-guests)) is never acted on; C(v3_free) cannot remove
    it and only a reboot of the host clears it. A VM whose name is on one fails with that explanation and nothing
    runs; other VMs are managed as usual (the slot just stays used).
  - A VM shown as C(UNKNOWN) (while C(v3_reset) runs) is waited for up to O(timeout); still C(UNKNOWN) then, the
    task fails and nothing runs. The module does not reset guests.
seealso:
  - module: v3vee.palacios.v3vee_inventory
  - module: v3vee.palacios.v3vee_facts
'''

EXAMPLES = r'''
- name: Add a VM to the inventory only (the GUI's "New VM")
  v3vee.palacios.v3vee_vm:
    name: web1
    config: /srv/palacios/web1.xml
    state: present

- name: Activate it (v3_create) without starting it
  v3vee.palacios.v3vee_vm:
    name: web1
    state: stopped

- name: Run a VM from a pre-built image, creating it if needed
  v3vee.palacios.v3vee_vm:
    name: db1
    image: /srv/palacios/db1.img
    state: running

- name: Run a VM built from XML with 512 MB instead of the XML's default
  v3vee.palacios.v3vee_vm:
    name: web2
    config: /srv/palacios/web.xml
    config_options:
      mem: 512
    state: running

- name: Pause it
  v3vee.palacios.v3vee_vm:
    name: web2
    state: paused

- name: Fresh boot (free, re-create, launch)
  v3vee.palacios.v3vee_vm:
    name: web2
    state: restarted

- name: Change the XML of an active VM (free and re-create it)
  v3vee.palacios.v3vee_vm:
    name: web2
    config: /srv/palacios/web-v2.xml
    recreate: true
    state: running

- name: Deactivate (free in the kernel, keep in the inventory), even if it runs
  v3vee.palacios.v3vee_vm:
    name: web2
    state: inactive
    force: true

- name: Adopt a VM created with v3_create on the command line
  v3vee.palacios.v3vee_vm:
    name: scratch
    image: /srv/palacios/scratch.img
    state: present

- name: Delete a VM from the kernel and the inventory
  v3vee.palacios.v3vee_vm:
    name: db1
    state: absent
    force: true

- name: Set the paths once for a simulated host
  module_defaults:
    group/v3vee.palacios.v3vee:
      tools_dir: /opt/v3vee-sim/bin
      proc_dir: /opt/v3vee-sim/proc/v3vee
      dev_dir: /opt/v3vee-sim/dev
  v3vee.palacios.v3vee_vm:
    name: test1
    config: /opt/v3vee-sim/guests/bios-only.xml
    state: running
'''

RETURN = r'''
vm:
  description: The VM after the run (in check mode, as a real run would leave it).
  returned: always
  type: dict
  contains:
    name:
      description: VM name.
      type: str
      sample: web1
    in_inventory:
      description: Whether the inventory has a record for it.
      type: bool
      sample: true
    state:
      description: Kernel state from C(v3-guests) (V(stopped), V(running), V(paused), V(ERROR)), or V(inactive)
        (recorded, not in the kernel), or V(absent).
      type: str
      sample: running
    slot:
      description: Kernel slot (the N of C(/dev/v3-vmN)), or null when not in the kernel.
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
    type:
      description: VM type from C(v3-guests) (V(general) or V(hvm)).
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
      sample: {mem: "512"}
    desired_state:
      description: Recorded desired state, which M(v3vee.palacios.v3vee_inventory) O(v3vee.palacios.v3vee_inventory#module:recover)
        restores after a reboot.
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
steps:
  description: Lifecycle steps run (or, in check mode, that would run), in order.
  returned: always
  type: list
  elements: str
  sample: [continue, stop, free]
commands:
  description: The v3 tool commands run, as argument lists.
  returned: always
  type: list
  elements: list
  sample: [["/usr/local/bin/v3_create", "-b", "/srv/palacios/web1.xml", "web1"], ["/usr/local/bin/v3_launch", "/dev/v3-vm0"]]
duration:
  description: Seconds the run took.
  returned: always
  type: float
  sample: 0.42
diff:
  description: The VM before and after (with C(--diff)).
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.module import run_module
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import DESIRED_STATES
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_definition, validate_name


def vm_argument_spec():
    return argument_spec(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(DESIRED_STATES)),
        image=dict(type='path'),
        config=dict(type='path'),
        config_options=dict(type='dict'),
        recreate=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        wait=dict(type='bool', default=True),
        timeout=dict(type='int', default=60),
    )


def main():
    module = AnsibleModule(
        argument_spec=vm_argument_spec(),
        mutually_exclusive=[('image', 'config')],
        required_by={'config_options': 'config'},
        supports_check_mode=True,
    )
    params = module.params
    # Bad input fails here, before the lock is taken or any tool runs.
    try:
        validate_name(params['name'])
        definition = shape = None
        if params['image'] or params['config']:
            options = dict((k, '%s' % v) for k, v in (params['config_options'] or {}).items())
            definition = {'image': params['image'], 'config': params['config'], 'config_options': options}
            shape = check_definition(**definition)
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())

    def converge(session, store):
        return session.host.converge(store, params['name'], params['state'], definition=definition,
                                     force=params['force'], recreate=params['recreate'], shape=shape)

    run_module(module, converge, wait=params['wait'], timeout=params['timeout'])


if __name__ == '__main__':
    main()
