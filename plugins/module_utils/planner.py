# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Palacios lifecycle rules, as a pure planner: observed state x desired state -> steps.

Kernel rules (docs/palacios-interface.md 3.2 and "Observed on real Palacios"):
create -> stopped; launch only from stopped (relaunching a VM stopped after running resumes
it); pause only from running; continue only from paused; stop only from running (stopping a
paused VM is silently ignored, so continue first); free only from stopped or ERROR. An ERROR
VM can only be freed: to bring it back it is re-created.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError

DESIRED_STATES = ('present', 'inactive', 'stopped', 'running', 'paused', 'absent', 'restarted')
# Kernel-side observed states; 'none' = not in the kernel (inactive or unknown).
OBSERVED_STATES = ('none', 'stopped', 'running', 'paused', 'error')
KERNEL_DESIRED = ('stopped', 'running', 'paused')

_TEARDOWN = {
    'none': (),
    'stopped': ('free',),
    'running': ('stop', 'free'),
    'paused': ('continue', 'stop', 'free'),
    'error': ('free',),
}
_BUILD = {
    'none': (),
    'stopped': ('create',),
    'running': ('create', 'launch'),
    'paused': ('create', 'launch', 'pause'),
}

# (observed, desired) -> kernel steps, in order. The documentation matrix of v3vee_vm is
# checked against this table by a unit test.
KERNEL_STEPS = {
    ('none', 'present'): (),
    ('none', 'inactive'): (),
    ('none', 'stopped'): ('create',),
    ('none', 'running'): ('create', 'launch'),
    ('none', 'paused'): ('create', 'launch', 'pause'),
    ('none', 'absent'): (),
    ('none', 'restarted'): ('create', 'launch'),

    ('stopped', 'present'): (),
    ('stopped', 'inactive'): ('free',),
    ('stopped', 'stopped'): (),
    ('stopped', 'running'): ('launch',),
    ('stopped', 'paused'): ('launch', 'pause'),
    ('stopped', 'absent'): ('free',),
    ('stopped', 'restarted'): ('free', 'create', 'launch'),

    ('running', 'present'): (),
    ('running', 'inactive'): ('stop', 'free'),
    ('running', 'stopped'): ('stop',),
    ('running', 'running'): (),
    ('running', 'paused'): ('pause',),
    ('running', 'absent'): ('stop', 'free'),
    ('running', 'restarted'): ('stop', 'free', 'create', 'launch'),

    ('paused', 'present'): (),
    ('paused', 'inactive'): ('continue', 'stop', 'free'),
    ('paused', 'stopped'): ('continue', 'stop'),
    ('paused', 'running'): ('continue',),
    ('paused', 'paused'): (),
    ('paused', 'absent'): ('continue', 'stop', 'free'),
    ('paused', 'restarted'): ('continue', 'stop', 'free', 'create', 'launch'),

    ('error', 'present'): (),
    ('error', 'inactive'): ('free',),
    ('error', 'stopped'): ('free', 'create'),
    ('error', 'running'): ('free', 'create', 'launch'),
    ('error', 'paused'): ('free', 'create', 'launch', 'pause'),
    ('error', 'absent'): ('free',),
    ('error', 'restarted'): ('free', 'create', 'launch'),
}

# Tearing down a live guest loses its work: like the GUI refusing to delete a running VM,
# the collection does it only with force.
FORCE_REQUIRED = frozenset([
    ('running', 'inactive'), ('running', 'absent'),
    ('paused', 'inactive'), ('paused', 'absent'),
])

STEP_TOOLS = {
    'create': 'v3_create', 'launch': 'v3_launch', 'pause': 'v3_pause',
    'continue': 'v3_continue', 'stop': 'v3_stop', 'free': 'v3_free',
}
# State /proc must show after each step (None: the slot is gone).
STEP_RESULT = {
    'create': 'stopped', 'launch': 'running', 'pause': 'paused',
    'continue': 'running', 'stop': 'stopped', 'free': None,
}


def kernel_state(state):
    """Map a v3-guests state to a planner state ('none' for no VM)."""
    if state is None:
        return 'none'
    if state == 'ERROR':
        return 'error'
    if state in ('stopped', 'running', 'paused'):
        return state
    return None  # INVALID, UNKNOWN (resetting), simulating...: transitional, not plannable


def final_state(observed, steps):
    """The kernel state after running steps from observed."""
    state = observed
    for step in steps:
        result = STEP_RESULT[step]
        state = 'none' if result is None else result
    return state


def definition_of(record):
    if not record:
        return None
    return {'image': record.get('image'), 'config': record.get('config'),
            'config_options': dict(record.get('config_options') or {})}


class Plan(object):
    def __init__(self, steps, final, definition, desired_state, definition_changed, recreated):
        self.steps = tuple(steps)
        self.final = final                        # planner kernel state after the steps
        self.definition = definition              # image/config/options to record (None: unrecord)
        self.desired_state = desired_state        # what recover should bring the VM back to
        self.definition_changed = definition_changed
        self.recreated = recreated

    def __repr__(self):
        return 'Plan(%r -> %s)' % (self.steps, self.final)


def plan_vm(name, observed, record, definition, desired, force=False, recreate=False):
    """Plan one VM.

    observed: one of OBSERVED_STATES; record: its inventory record or None; definition:
    {'image', 'config', 'config_options'} given by the user or None (keep the recorded one).
    Raises V3veeError for what must not happen silently.
    """
    if observed not in OBSERVED_STATES:
        raise V3veeError('VM %r is in a transitional kernel state (%s); try again when it settles.'
                         % (name, observed))
    if desired not in DESIRED_STATES:
        raise V3veeError('Unknown desired state %r.' % desired)
    recorded = definition_of(record)
    target = definition if definition is not None else recorded
    changed = bool(recorded and definition is not None and definition != recorded)

    if desired == 'absent':
        target = None
    elif target is None:
        if observed != 'none':
            raise V3veeError('VM %r is in the kernel but not in the inventory (the GUI\'s "not in inventory"). '
                             'Give image, config or config_xml (what it was created from) to adopt it.' % name)
        raise V3veeError('VM %r does not exist (neither in the kernel nor in the inventory). To define it, give '
                         'image, config or config_xml.' % name)

    recreated = False
    if changed and observed in KERNEL_DESIRED and desired in ('present',) + KERNEL_DESIRED:
        if not recreate:
            raise V3veeError('VM %r is active (%s) and its image/config/config_options differ from the '
                             'inventory. Set recreate: true to free and re-create it from the new '
                             'definition, or deactivate it first (state: inactive).' % (name, observed))
        goal = observed if desired == 'present' else desired
        steps = _TEARDOWN[observed] + _BUILD[goal]
        recreated = True
    else:
        steps = KERNEL_STEPS[(observed, desired)]
        if (observed, desired) in FORCE_REQUIRED and not force:
            raise V3veeError('VM %r is %s; %s it would stop the guest (%s). Set force: true to do it.'
                             % (name, observed, 'deleting' if desired == 'absent' else 'deactivating',
                                ' -> '.join(steps)))
    final = final_state(observed, steps)

    if desired == 'present':
        if record and record.get('desired_state'):
            desired_state = record['desired_state']
        else:
            desired_state = {'none': 'inactive', 'error': 'stopped'}.get(final, final)
    elif desired == 'restarted':
        desired_state = 'running'
    elif desired == 'absent':
        desired_state = None
    else:
        desired_state = desired
    return Plan(steps, final, target, desired_state, changed, recreated)


def _describe(steps):
    return ', '.join(steps) if steps else 'nothing'


def matrix_notes():
    """The v3vee_vm notes matrix, one line per observed state (kept equal to DOCUMENTATION)."""
    labels = {'none': 'not in the kernel', 'stopped': 'stopped', 'running': 'running',
              'paused': 'paused', 'error': 'ERROR'}
    lines = []
    for observed in OBSERVED_STATES:
        cells = []
        for desired in DESIRED_STATES:
            text = _describe(KERNEL_STEPS[(observed, desired)])
            if (observed, desired) in FORCE_REQUIRED:
                text += ' (needs force)'
            cells.append('C(%s) %s' % (desired, text))
        lines.append('From %s - %s.' % (labels[observed], '; '.join(cells)))
    return lines
