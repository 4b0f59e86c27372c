# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One VM's desired state as modules take it: v3vee_vm's options, and each item of v3vee_vms' `vms`.

Both modules build their options from vm_item_spec() and turn them into what the engine plans
from with item_definition(), so one VM means the same thing in either module.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import checked_definition
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import DESIRED_STATES
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import validate_name

# Argument relations of one VM (AnsibleModule keywords; also the `vms` suboption keywords).
# config_options needs config or config_xml: checked_definition says so (required_by takes one key).
ITEM_RELATIONS = dict(mutually_exclusive=[('image', 'config', 'config_xml')])


def vm_item_spec():
    """The options that describe one VM."""
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(DESIRED_STATES)),
        image=dict(type='path'),
        config=dict(type='path'),
        config_xml=dict(type='str'),
        config_options=dict(type='dict'),
        recreate=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
    )


def item_definition(item, inventory_path):
    """(definition, shape, inline) of one VM's options: definition None keeps the recorded one;
    inline is the InlineConfig of config_xml (written under the lock, before v3_create).

    Raises V3veeError for bad input (name, image or XML), before any lock is taken or tool runs.
    """
    validate_name(item['name'])
    return checked_definition(item['name'], inventory_path, image=item.get('image'), config=item.get('config'),
                              config_xml=item.get('config_xml'), config_options=item.get('config_options'))
