import itertools

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils import planner

IMG = {'image': '/srv/a.img', 'config': None, 'config_options': {}}
XML = {'image': None, 'config': '/srv/a.xml', 'config_options': {'mem': '256'}}

# An independent model of what the kernel accepts (interface spec 3.2 + observed 1), written
# from the spec and not from the planner: a step not listed here would be refused or ignored.
KERNEL = {
    ('none', 'create'): 'stopped',
    ('stopped', 'launch'): 'running',        # also a VM stopped after running: it resumes
    ('running', 'pause'): 'paused',
    ('paused', 'continue'): 'running',
    ('running', 'stop'): 'stopped',
    ('stopped', 'free'): 'none',
    ('error', 'free'): 'none',
}
GOAL = {'present': None, 'inactive': 'none', 'absent': 'none', 'stopped': 'stopped', 'running': 'running',
        'paused': 'paused', 'restarted': 'running'}


def record(desired='running', **kw):
    rec = dict(IMG, name='vm', slot=0, device='/dev/v3-vm0', observed_state='x', desired_state=desired)
    rec.update(kw)
    return rec


def apply(observed, steps):
    state = observed
    for step in steps:
        assert (state, step) in KERNEL, 'kernel would refuse %s from %s' % (step, state)
        state = KERNEL[(state, step)]
    return state


@pytest.mark.parametrize('observed,desired', list(itertools.product(planner.OBSERVED_STATES, planner.DESIRED_STATES)))
def test_every_plan_is_legal_in_the_kernel_and_reaches_the_goal(observed, desired):
    plan = planner.plan_vm('vm', observed, record(), None, desired, force=True)
    final = apply(observed, plan.steps)
    assert final == (GOAL[desired] or observed)
    assert plan.final == final
    if desired == 'restarted':
        assert plan.steps[-2:] == ('create', 'launch')  # always a fresh boot
    if desired == 'absent':
        assert plan.definition is None
    else:
        assert plan.definition == IMG


@pytest.mark.parametrize('observed,desired', list(itertools.product(planner.OBSERVED_STATES, planner.DESIRED_STATES)))
def test_plans_are_minimal(observed, desired):
    """No plan creates or frees when the goal is reachable without it (except restarted)."""
    plan = planner.plan_vm('vm', observed, record(), None, desired, force=True)
    if desired == 'restarted' or observed == 'error':
        return
    if observed != 'none' and GOAL[desired] not in (None, 'none'):
        assert 'create' not in plan.steps and 'free' not in plan.steps
    if GOAL[desired] is None or GOAL[desired] == observed:
        assert plan.steps == ()


def test_free_of_paused_vm_continues_then_stops():
    assert planner.plan_vm('vm', 'paused', record(), None, 'absent', force=True).steps == ('continue', 'stop', 'free')


def test_stopping_a_paused_vm_continues_first():
    assert planner.plan_vm('vm', 'paused', record(), None, 'stopped').steps == ('continue', 'stop')


def test_vm_stopped_after_running_is_relaunched_not_recreated():
    assert planner.plan_vm('vm', 'stopped', record(), None, 'running').steps == ('launch',)


def test_error_vm_is_freed_and_recreated_to_run():
    assert planner.plan_vm('vm', 'error', record(), None, 'running').steps == ('free', 'create', 'launch')


@pytest.mark.parametrize('observed', ['running', 'paused'])
@pytest.mark.parametrize('desired', ['absent', 'inactive'])
def test_tearing_down_a_live_vm_needs_force(observed, desired):
    with pytest.raises(V3veeError, match='force: true'):
        planner.plan_vm('vm', observed, record(), None, desired)


def test_stopped_vm_can_be_deleted_without_force():
    assert planner.plan_vm('vm', 'stopped', record(), None, 'absent').steps == ('free',)


def test_changed_definition_of_active_vm_needs_recreate():
    with pytest.raises(V3veeError, match='recreate: true'):
        planner.plan_vm('vm', 'running', record(), XML, 'running')


def test_recreate_rebuilds_to_the_desired_state():
    plan = planner.plan_vm('vm', 'paused', record(), XML, 'running', recreate=True)
    assert plan.steps == ('continue', 'stop', 'free', 'create', 'launch')
    assert plan.definition == XML and plan.recreated


def test_recreate_with_present_keeps_the_kernel_state():
    plan = planner.plan_vm('vm', 'running', record(), XML, 'present', recreate=True)
    assert plan.steps == ('stop', 'free', 'create', 'launch')


def test_changed_definition_of_inactive_vm_is_just_recorded():
    plan = planner.plan_vm('vm', 'none', record(), XML, 'present')
    assert plan.steps == () and plan.definition == XML and plan.definition_changed


def test_same_definition_is_not_a_change():
    plan = planner.plan_vm('vm', 'running', record(), dict(IMG), 'running')
    assert plan.steps == () and not plan.definition_changed


def test_adopting_needs_a_definition():
    with pytest.raises(V3veeError, match='not in the inventory.*adopt'):
        planner.plan_vm('vm', 'running', None, None, 'present')


def test_a_vm_that_exists_nowhere_is_said_not_to_exist_first():
    with pytest.raises(V3veeError, match=r"^VM 'vm' does not exist \(neither in the kernel nor in the inventory\)"):
        planner.plan_vm('vm', 'none', None, None, 'running')


def test_adoption_keeps_the_kernel_state_as_desired_state():
    plan = planner.plan_vm('vm', 'paused', None, IMG, 'present')
    assert plan.steps == () and plan.desired_state == 'paused'


def test_unknown_vm_without_definition_fails():
    with pytest.raises(V3veeError, match='give image, config or config_xml'):
        planner.plan_vm('vm', 'none', None, None, 'running')


def test_absent_for_an_unknown_vm_does_nothing():
    plan = planner.plan_vm('vm', 'none', None, None, 'absent')
    assert plan.steps == () and plan.definition is None


def test_present_keeps_the_recorded_desired_state():
    assert planner.plan_vm('vm', 'none', record('paused'), None, 'present').desired_state == 'paused'


def test_restarted_records_running():
    assert planner.plan_vm('vm', 'stopped', record('stopped'), None, 'restarted').desired_state == 'running'


def test_transitional_state_is_not_planned():
    with pytest.raises(V3veeError, match='transitional'):
        planner.plan_vm('vm', None, record(), None, 'running')


@pytest.mark.parametrize('state,expected', [(None, 'none'), ('ERROR', 'error'), ('paused', 'paused'),
                                            ('UNKNOWN', None), ('INVALID', None)])
def test_kernel_state_mapping(state, expected):
    assert planner.kernel_state(state) == expected
