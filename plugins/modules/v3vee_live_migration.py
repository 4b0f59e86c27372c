#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: v3vee_live_migration
short_description: Send or receive a running Palacios (V3VEE) VM over the network (live migration)
version_added: 0.3.0
description:
  - One half of a live migration with Palacios' C(v3_send) and C(v3_receive) over its network keyed stream
    (C(KEYED_STREAM net:a:<address>:<port>) on the receiving host, C(KEYED_STREAM net:c:<address>:<port>) on the
    sending one). The role C(v3vee.palacios.migrate) (C(migrate_method=live)) runs both halves and takes the source
    VM down afterwards.
  - O(direction=receive) on the target host - checks that a VM of O(name) can be made here (no VM or record of that
    name, its config available with the same content, memory, a slot, shadow paging, the port free), creates it from
    O(definition), runs C(v3_receive) (it listens until the sender connects, at most O(timeout) seconds), verifies in
    C(v3-guests-details) that the vcores now hold the sent state, launches the VM and records it as running. On any
    failure it frees the VM it made, and nothing stays recorded.
  - O(direction=send) on the source host - runs C(v3_send) on the running VM and verifies that Palacios left it
    paused (as it does after a send). On failure it verifies the VM runs (it continues it when the send left it
    paused) and says which step failed. Taking the source VM down after a successful move is left to the caller
    (M(v3vee.palacios.v3vee_vm) with O(v3vee.palacios.v3vee_vm#module:state=absent)).
  - A failure is explained from the kernel log - Palacios built without C(LIVE_MIGRATION), its network keyed stream
    broken (as observed with Linux 3.19), nothing listening, the port in use, nested paging.
author:
  - v3vee.palacios maintainers (@v3vee)
requirements:
  - the Palacios v3 tools on the managed host - C(v3_receive), C(v3_create), C(v3_launch), C(v3_stop), C(v3_free) to
    receive; C(v3_send) and C(v3_continue) to send (see O(tools_dir))
  - the Palacios kernel module C(v3vee.ko) loaded, built with C(CHECKPOINT), C(KEYED_STREAMS) and C(LIVE_MIGRATION)
  - root on the managed host (the v3 tools open root-only device nodes; the inventory is private)
  - Python 3.8 or later with the standard C(sqlite3) module on the managed host
options:
  name:
    description:
      - The VM - on the sending host a running VM of its inventory; on the receiving host the name the new VM gets
        (no VM or record of that name may exist there).
    type: str
    required: true
  direction:
    description:
      - V(receive) on the target host (run it first, asynchronously - it waits for the sender), V(send) on the
        source host.
    type: str
    required: true
    choices: [receive, send]
  address:
    description:
      - IPv4 address (C(a.b.c.d); Palacios parses it with C(in_aton) and resolves no names).
      - For V(send), the receiving host's address. For V(receive), it only fills the URL - Palacios listens on every
        address of the host.
      - Required for V(send).
    type: str
    default: 0.0.0.0
  port:
    description:
      - TCP port the receiver listens on and the sender connects to. On the receiving host it must be free.
      - Never probe it by connecting (for example with M(ansible.builtin.wait_for)) - Palacios takes the first
        connection as the migration stream. To wait until the receiver listens, look at the receiving host's
        listening sockets (C(ss -Hltn 'sport = :<port>')).
    type: int
    required: true
  definition:
    description:
      - Required for V(receive) - the VM's definition as M(v3vee.palacios.v3vee_vm_info) returns it for the VM on the
        source host (RV(v3vee.palacios.v3vee_vm_info#module:vms[].definition)) - C(image) or C(config) (with
        C(config_options)), and for a config C(config_xml) and C(config_sha256).
      - A config file must exist on this host with the same content (its sha256 is compared); a config that was
        given inline (C(config_inline)) is written to this host's managed directory from C(config_xml). An image
        must exist on this host.
      - Palacios receives memory only into a VM with shadow paging, so a config with C(<paging mode="nested">) is
        refused before any tool runs.
    type: dict
  timeout:
    description:
      - Deadline in seconds of the V(v3_receive) or V(v3_send) run, which includes the wait for the other side; past
        it the tool is killed and the task fails (a receiver nobody connected to is killed, its VM freed).
      - Also the deadline of each other tool run and of each wait for C(/proc) to show a step.
      - When run with C(async), give C(async) more than O(timeout) plus a minute, so that the module, not Ansible,
        ends a receiver that waits too long (Ansible's kill would leave the receiver listening).
    type: int
    default: 120
extends_documentation_fragment:
  - v3vee.palacios.common
  - v3vee.palacios.common.ATTRIBUTES
attributes:
  check_mode:
    description: Checks everything a real run checks first (VM, definition, memory, slot, port, tools) and predicts the
      VM, its slot and the steps; runs no tool.
    support: full
  diff_mode:
    description: Returns the VM before and after.
    support: full
notes:
  - On real Palacios C(b8836aa7) with Linux 3.19 and later the network keyed stream is broken - both tools exit 255
    (C(Send msg error -14), C(Key mismatch in open_key_net) in the kernel log), the source keeps running and the
    target VM stays fresh. This module then fails cleanly on both hosts (the target VM freed, the source running);
    move VMs with a checkpoint there (C(migrate_method=checkpoint) of the role).
  - The receive holds the host lock while it checks and creates the VM and again while it verifies, launches and
    records it (or frees it), but not while C(v3_receive) waits for the sender - a wait of up to O(timeout) would
    otherwise hold up every other run on the host (M(v3vee.palacios.v3vee_facts) included). Meanwhile the new VM is
    in the inventory as stopped, so other runs see a managed VM. The send holds the source host's lock throughout
    (it is short once the receiver listens, and the source VM must not change meanwhile).
  - Palacios leaves the source VM paused after a successful send; the receive launches the target VM, which resumes
    where the source stopped.
seealso:
  - module: v3vee.palacios.v3vee_vm_info
  - module: v3vee.palacios.v3vee_vm
'''

EXAMPLES = r'''
- name: What the target needs to make the VM (on the source host)
  v3vee.palacios.v3vee_vm_info:
    name: web1
  register: web1_info
  delegate_to: source-host

- name: Receive web1 on the target host (listens until the sender connects)
  v3vee.palacios.v3vee_live_migration:
    name: web1
    direction: receive
    port: 9000
    definition: "{{ web1_info.vms[0].definition }}"
    timeout: 120
  async: 200
  poll: 0
  register: web1_receive
  delegate_to: target-host

- name: Wait until Palacios listens (never connect to the port to check)
  ansible.builtin.command: ss -Hltn 'sport = :9000'
  register: listening
  until: listening.stdout != ''
  retries: 50
  delay: 1
  changed_when: false
  delegate_to: target-host

- name: Send web1 from the source host
  v3vee.palacios.v3vee_live_migration:
    name: web1
    direction: send
    address: 192.0.2.20
    port: 9000
  delegate_to: source-host

- name: The receive's result
  ansible.builtin.async_status:
    jid: "{{ web1_receive.ansible_job_id }}"
  register: received
  until: received.finished
  retries: 200
  delay: 1
  delegate_to: target-host

- name: Take the paused source VM down
  v3vee.palacios.v3vee_vm:
    name: web1
    state: absent
    force: true
  delegate_to: source-host
'''

RETURN = r'''
vm:
  description: The VM after the run, as M(v3vee.palacios.v3vee_vm) returns it - on the target running, on the source
    paused (in check mode, as a real run would leave it).
  returned: success
  type: dict
  sample: {name: web1, in_inventory: true, state: running, slot: 0, device: /dev/v3-vm0, vcores: 1,
           mem_bytes: 134217728, type: general, desired_state: running}
steps:
  description: Steps run (or, in check mode, that would run) - C(create), C(receive), C(launch) on the target;
    C(send), and after a failed send C(continue), on the source.
  returned: always
  type: list
  elements: str
  sample: [create, receive, launch]
failed_step:
  description: The step that failed.
  returned: failure
  type: str
  sample: receive
cores:
  description:
    - The VM's vcores from C(v3-guests-details) - on the target as received (before the launch), on the source as
      the send left them (paused). Equal registers (C(rip), C(exits)) on both sides show that the state moved.
      Empty in check mode.
  returned: success
  type: list
  elements: dict
  sample: [{vcore: 0, state: stopped, pcore: 0, exits: 1520, rip: "0x00000000000f3a7c", cpu_mode: real,
            mem_mode: physical, paging: shadow, vcore_type: ""}]
url:
  description: The keyed stream URL given to the tool.
  returned: success
  type: str
  sample: "net:a:0.0.0.0:9000"
commands:
  description: The v3 tool commands run, as argument lists.
  returned: always
  type: list
  elements: list
  sample: [["/usr/local/bin/v3_send", "/dev/v3-vm0", "KEYED_STREAM", "net:c:192.0.2.20:9000"]]
duration:
  description: Seconds the run took.
  returned: always, except when bad input failed before the run
  type: float
  sample: 1.7
diff:
  description: The VM before and after (with C(--diff)).
  returned: success, when diff mode is on
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, argument_spec
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import received_definition
from ansible_collections.v3vee.palacios.plugins.module_utils.migration import DIRECTIONS, check_endpoint, receive, send
from ansible_collections.v3vee.palacios.plugins.module_utils.module import HostSession
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import validate_name


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            name=dict(type='str', required=True),
            direction=dict(type='str', required=True, choices=list(DIRECTIONS)),
            address=dict(type='str', default='0.0.0.0'),
            port=dict(type='int', required=True),
            definition=dict(type='dict'),
            timeout=dict(type='int', default=120),
        ),
        required_if=[('direction', 'receive', ('definition',))],
        supports_check_mode=True)
    params = module.params
    # Bad input fails here, before the lock is taken, any file is written or any tool runs.
    definition = shape = inline = None
    try:
        validate_name(params['name'])
        if params['direction'] == 'send' and params['address'] == '0.0.0.0':
            raise V3veeError('direction=send needs address: the receiving host\'s IPv4 address.')
        check_endpoint(params['address'], params['port'])
        if params['direction'] == 'receive':
            inventory_path = Settings.resolve(params).inventory_path
            definition, shape, inline = received_definition(params['name'], params['definition'], inventory_path)
            if shape.paging != 'shadow':
                raise V3veeError('VM %r is configured with nested paging (<paging mode="nested">); Palacios receives '
                                 'memory only into VMs with shadow paging ("Cannot currently handle nested paging"). '
                                 'Move it with a checkpoint instead.' % params['name'])
        session = HostSession(module, timeout=params['timeout'])
    except V3veeError as err:
        module.fail_json(steps=[], failed_step='preflight', **err.fail_kwargs())
    try:
        if params['direction'] == 'receive':
            result = receive(session, module, definition, shape, inline)
        else:
            result = send(session, module)
    except V3veeError as err:
        failed = err.fail_kwargs()
        failed.setdefault('steps', [])
        failed.setdefault('failed_step', 'preflight')
        for warning in session.host.warnings:
            module.warn(warning)
        changed = session.host_changed() or session.store.changed or 'continue' in failed['steps']
        module.fail_json(changed=changed, commands=session.host.tools.commands,
                         duration=round(time.time() - session.started, 3), **failed)
    session.exit(result, False)


if __name__ == '__main__':
    main()
