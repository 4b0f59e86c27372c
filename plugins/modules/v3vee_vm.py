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
    "not in inventory") is adopted when O(image), O(config) or O(config_xml) is given.
author:
  - v3vee.palacios maintainers (@v3vee)
requirements:
  - the Palacios v3 tools C(v3_create), C(v3_launch), C(v3_pause), C(v3_continue), C(v3_stop) and C(v3_free) on the managed
    host (see O(tools_dir)), for any change in the kernel
  - the Palacios kernel module C(v3vee.ko) loaded, for any change in the kernel (records alone need neither)
  - root on the managed host (the v3 tools open root-only device nodes; the inventory is private)
  - Python 3.8 or later with the standard C(sqlite3) module on the managed host
options:
  name:
    description:
      - VM name, the inventory's key. At most 127 bytes of UTF-8 (Palacios keeps no more); no commas, TABs,
        newlines or other control characters; not starting with C(-) (V(v3_create) would read it as options).
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
      - Mutually exclusive with O(config) and O(config_xml).
    type: path
  config:
    description:
      - Absolute path of a Palacios XML configuration, built into an image by C(v3_create -b) in the XML's
        directory, so relative C(<file filename>) paths resolve against that directory.
      - It is validated first (well-formed, C(class="PC"), C(<memory>), C(<cores count>), every C(<file>)
        present), because V(v3_create -b) crashes on a bad XML. Refused too, because Palacios' own XML parser
        could not survive them in the kernel - a C(DOCTYPE) (entity declarations), more than 64 levels of nesting,
        more than 1 MiB, and any encoding but UTF-8.
    type: path
  config_xml:
    description:
      - The Palacios XML configuration itself, for example from C(lookup('template', 'web1.xml.j2')), so that guest
        configs can live on the controller.
      - Validated as O(config) is; a C(<file filename>) must be an absolute path on the managed host (inline XML has
        no directory of its own there, so relative names are refused).
      - Written to C(<directory of inventory_path>/configs/<name>-<hash>.xml), for example
        C(/var/lib/v3vee/configs/web1-3f2a9c0d1e4b5a67.xml), directory mode C(0700), file mode C(0600), atomically
        (temporary file and rename; a symlink in its place is replaced, never followed), and recorded as the VM's
        config. The hash covers the name and the content, so changed content is a changed definition - for an
        active VM it needs O(recreate=true), as a changed O(config) does. A managed file no record refers to any more
        is removed.
      - Nothing is written when it is invalid, and nothing in check mode.
      - Mutually exclusive with O(image) and O(config).
    type: str
    version_added: 0.2.0
  config_options:
    description:
      - Overrides for elements of O(config) or O(config_xml) that carry an C(opt_tag) attribute, passed as C(tag=value).
      - Every key must match an C(opt_tag) in the XML (ASCII letters match either case, as in V(v3_create)).
        Values are printable text (no control characters).
    type: dict
  recreate:
    description:
      - Allow freeing and re-creating an active VM whose O(image), O(config), O(config_xml) or O(config_options)
        differ from the inventory record. Without it such a change is an error, never a silent no-op.
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
    description:
      - Seconds to wait for each step to show in the proc directory.
      - It is also each v3 tool run's deadline (V(v3_create) gets one more second per 16 MB of the image, or of the
        XML and its C(<file>)s, that it reads); see the notes.
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

- name: Run a VM whose XML is a template on the controller (written to the host's managed directory)
  v3vee.palacios.v3vee_vm:
    name: web3
    config_xml: "{{ lookup('ansible.builtin.template', 'web.xml.j2') }}"
    state: running
    recreate: true            # a changed template rebuilds the VM

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
      description: Recorded XML config path (for O(config_xml), the file in the managed directory).
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
guest_configs:
  description: Files of the managed directory written or removed for O(config_xml) (in check mode, that would be).
  returned: always
  type: dict
  version_added: 0.2.0
  contains:
    written:
      description: Inline configs written.
      type: list
      elements: str
      sample: [/var/lib/v3vee/configs/web3-3f2a9c0d1e4b5a67.xml]
    removed:
      description: Inline configs no record refers to any more, removed.
      type: list
      elements: str
      sample: [/var/lib/v3vee/configs/web3-9a0b1c2d3e4f5061.xml]
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
  description: The VM before and after (with C(--diff)).
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import GuestConfigs, converge_with_config
from ansible_collections.v3vee.palacios.plugins.module_utils.module import misplaced_message, misplaced_options, run_module
from ansible_collections.v3vee.palacios.plugins.module_utils.vmspec import ITEM_RELATIONS, item_definition, vm_item_spec


def vm_argument_spec():
    return argument_spec(wait=dict(type='bool', default=True), timeout=dict(type='int', default=60),
                         **vm_item_spec())


def main():
    spec = vm_argument_spec()
    # memory=256 and the like: accepted here only to say where the setting goes.
    misplaced = misplaced_options(spec)
    module = AnsibleModule(
        argument_spec=dict(spec, **dict((key, dict(type='raw')) for key in misplaced)),
        supports_check_mode=True, **ITEM_RELATIONS)
    if misplaced:
        module.fail_json(msg=misplaced_message('v3vee.palacios.v3vee_vm', misplaced))
    params = module.params
    # Bad input fails here, before the lock is taken, any file is written or any tool runs.
    try:
        definition, shape, inline = item_definition(params, Settings.resolve(params).inventory_path)
    except V3veeError as err:
        module.fail_json(**err.fail_kwargs())

    def converge(session, store):
        configs = GuestConfigs(session.settings.inventory_path, check_mode=module.check_mode)
        return converge_with_config(configs, store, params['name'], params['state'], inline, lambda: session.host.converge(
            store, params['name'], params['state'], definition=definition, force=params['force'],
            recreate=params['recreate'], shape=shape))

    run_module(module, converge, wait=params['wait'], timeout=params['timeout'])


if __name__ == '__main__':
    main()
