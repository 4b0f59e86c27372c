"""`changed` is true whenever a run changed the host or the inventory, also when it then fails:
every cell of the lifecycle matrix with more than one step, failed at each of its steps by a
simulated kernel refusal. What changed is judged by reading /proc and the inventory ourselves."""
import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.planner import KERNEL_STEPS, STEP_TOOLS
from ansible_collections.v3vee.palacios.plugins.modules import v3vee_inventory, v3vee_memory, v3vee_vm

from conftest import BIOS_XML

SETUP = {'none': 'inactive', 'stopped': 'stopped', 'running': 'running', 'paused': 'paused', 'error': 'running'}
CASES = [(observed, desired, index)
         for (observed, desired), steps in sorted(KERNEL_STEPS.items()) if len(steps) > 1
         for index in range(len(steps))]


def assert_inventory_is_true(sim, name):
    """The record links the VM /proc shows (or none), with the state /proc shows."""
    record = sim.records()[name]
    kernel = sim.guests().get(name)
    if kernel is None:
        assert record['slot'] is None and record['observed_state'] == 'inactive', record
    else:
        assert (record['slot'], record['observed_state']) == kernel, (record, kernel)


@pytest.mark.parametrize('observed, desired, index', CASES,
                         ids=['%s-%s-fails-at-%d' % case for case in CASES])
def test_a_failed_step_reports_changed_exactly_when_the_host_or_inventory_changed(
        sim, run_module, observed, desired, index):
    setup = run_module(v3vee_vm, name='vm1', config=BIOS_XML, state=SETUP[observed])
    assert not setup.get('failed'), setup
    if observed == 'error':
        sim.tool('v3sim', 'vm-error', str(setup['vm']['slot']))
    steps = KERNEL_STEPS[(observed, desired)]
    sim.tool('v3sim', 'fault', 'add', STEP_TOOLS[steps[index]], 'refuse')
    kernel_before, records_before = sim.guests(), sim.records()

    result = run_module(v3vee_vm, name='vm1', state=desired, force=True, wait=False)

    assert result['failed'], result
    assert len(result['commands']) == index + 1, result['commands']
    something_changed = sim.guests() != kernel_before or sim.records() != records_before
    assert result['changed'] is something_changed, result
    if index > 0:
        assert result['changed'] is True  # the steps before the refused one took effect
    assert_inventory_is_true(sim, 'vm1')


def test_launch_refused_after_create_reports_changed_and_records_the_vm(sim, run_module):
    sim.tool('v3sim', 'fault', 'add', 'v3_launch', 'refuse')
    result = run_module(v3vee_vm, name='fresh', config=BIOS_XML, state='running', wait=False)
    assert result['failed'] and result['changed'] is True, result
    assert sim.guests()['fresh'][1] == 'stopped'
    assert_inventory_is_true(sim, 'fresh')


def test_a_refused_first_step_with_nothing_recorded_reports_no_change(sim, run_module):
    sim.tool('v3sim', 'fault', 'add', 'v3_create', 'refuse')
    result = run_module(v3vee_vm, name='fresh', config=BIOS_XML, state='running', wait=False)
    assert result['failed'] and result['changed'] is False, result
    assert sim.guests() == {} and sim.records() == {}


def test_memory_add_refused_by_the_kernel_reports_changed(sim, run_module):
    # A refused hot-remove v3_mem -a leaves the memory offline and recorded: the host changed.
    sim.tool('v3sim', 'fault', 'add', 'v3_mem', 'refuse')
    before = sim.status()['reserved_bytes']
    result = run_module(v3vee_memory, total_mb=768)
    assert result['failed'] and result['changed'] is True, result
    assert len(result['commands']) == 1
    assert sim.status()['reserved_bytes'] == before


def test_recover_failing_after_create_reports_changed(sim, run_module):
    assert not run_module(v3vee_vm, name='vm1', config=BIOS_XML, state='running').get('failed')
    sim.tool('v3sim', 'reboot')
    sim.tool('v3sim', 'load')
    for _chunk in range(4):
        sim.tool('v3_mem', '-a', '128')
    sim.tool('v3sim', 'fault', 'add', 'v3_launch', 'refuse')
    result = run_module(v3vee_inventory, recover=True, wait=False)
    assert result['failed'] and result['changed'] is True, result
    assert sim.guests()['vm1'][1] == 'stopped'
    assert_inventory_is_true(sim, 'vm1')
