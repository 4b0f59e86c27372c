# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One VM's desired state as modules take it: v3vee_vm's options, and each item of v3vee_vms' `vms`.

Both modules build their options from vm_item_spec() and turn them into what the engine plans
from with item_definition(), so one VM means the same thing in either module.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.v3vee.palacios.plugins.module_utils.planner import DESIRED_STATES
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_definition, validate_name

# Argument relations of one VM (AnsibleModule keywords; also the `vms` suboption keywords).
ITEM_RELATIONS = dict(mutually_exclusive=[('image', 'config')], required_by={'config_options': 'config'})


def vm_item_spec():
    """The options that describe one VM."""
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(DESIRED_STATES)),
        image=dict(type='path'),
        config=dict(type='path'),
        config_options=dict(type='dict'),
        recreate=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
    )


def item_definition(item):
    """(definition, shape) of one VM's options: definition None keeps the recorded one.

    Raises V3veeError for bad input (name, image or XML), before any lock is taken or tool runs.
    """
    validate_name(item['name'])
    if not (item.get('image') or item.get('config')):
        return None, None
    options = dict((k, '%s' % v) for k, v in (item.get('config_options') or {}).items())
    definition = {'image': item.get('image'), 'config': item.get('config'), 'config_options': options}
    return definition, check_definition(**definition)
