import itertools

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import recover
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import Pool, Snapshot, VmEntry
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import with_predictions

XML = {'image': None, 'config': '/srv/web.xml', 'config_options': {}}
MB128 = 134217728

# The kernel's rules (interface spec 3.2 + observed 1), written independently of the planner.
KERNEL = {
    ('none', 'create'): 'stopped', ('stopped', 'launch'): 'running', ('running', 'pause'): 'paused',
    ('paused', 'continue'): 'running', ('running', 'stop'): 'stopped', ('stopped', 'free'): 'none',
    ('error', 'free'): 'none',
}
PROC_STATE = {'none': None, 'stopped': 'stopped', 'running': 'running', 'paused': 'paused', 'error': 'ERROR'}


def vm(slot, name, state='running'):
    return VmEntry(slot, name, '/dev/v3-vm%d' % slot, state, 1, 1, MB128, 'general')


def record(name, desired, slot=None):
    rec = new_record(name, XML, desired_state=desired)
    if slot is not None:  # the link the record had before the reboot
        rec.update(slot=slot, device='/dev/v3-vm%d' % slot, observed_state=desired)
    return rec


def by_name(plans):
    return dict((p['name'], p) for p in plans)


def test_after_a_reboot_every_vm_is_rebuilt_to_its_desired_state():
    records = [record('a', 'stopped', 0), record('b', 'running', 1), record('c', 'paused', 2), record('d', 'inactive')]
    plans = by_name(recover.plan_recover(records, []))
    assert plans['a']['steps'] == ['create'] and plans['a']['action'] == recover.CONVERGE
    assert plans['b']['steps'] == ['create', 'launch']
    assert plans['c']['steps'] == ['create', 'launch', 'pause']
    assert plans['d']['action'] == recover.SKIP and plans['d']['steps'] == []
    assert all(p['observed'] == 'none' for p in plans.values())


def test_vms_are_rebuilt_in_the_order_of_their_old_slots_then_by_name():
    records = [record('zeta', 'running', 0), record('alpha', 'running', 2), record('mid', 'running', 1),
               record('new-b', 'running'), record('new-a', 'stopped')]
    assert [p['name'] for p in recover.plan_recover(records, [])] == ['zeta', 'mid', 'alpha', 'new-a', 'new-b']


def test_slots_read_before_the_run_override_the_records():
    # reconcile in the same run has already cleared the stale slots
    records = [record('b', 'running'), record('a', 'running')]
    plans = recover.plan_recover(records, [], slots={'b': 0, 'a': 5})
    assert [p['name'] for p in plans] == ['b', 'a']


def test_vm_in_its_desired_state_is_left_alone():
    plan = recover.plan_recover([record('a', 'running', 0)], [vm(0, 'a', 'running')])[0]
    assert plan['action'] == recover.IN_STATE and plan['steps'] == [] and plan['device'] == '/dev/v3-vm0'


@pytest.mark.parametrize('kernel,desired,steps', [
    ('paused', 'running', ['continue']),
    ('running', 'paused', ['pause']),
    ('running', 'stopped', ['stop']),
    ('paused', 'stopped', ['continue', 'stop']),    # stopping a paused VM is silently ignored
    ('stopped', 'running', ['launch']),             # relaunch resumes (observed 1)
    ('ERROR', 'running', ['free', 'create', 'launch']),
    ('ERROR', 'stopped', ['free', 'create']),
])
def test_drifted_vm_is_brought_back(kernel, desired, steps):
    plan = recover.plan_recover([record('a', desired, 0)], [vm(0, 'a', kernel)])[0]
    assert plan['steps'] == steps and plan['action'] == recover.CONVERGE


def test_recover_never_tears_down_a_vm_whose_desired_state_is_inactive():
    plan = recover.plan_recover([record('a', 'inactive', 0)], [vm(0, 'a', 'running')])[0]
    assert plan['action'] == recover.SKIP and plan['steps'] == [] and 'never' in plan['reason']


def test_duplicate_names_in_the_kernel_are_an_error_for_that_vm_only():
    plans = by_name(recover.plan_recover([record('twin', 'running'), record('ok', 'running')],
                                         [vm(0, 'twin'), vm(1, 'twin')]))
    assert plans['twin']['action'] == recover.ERROR and '/dev/v3-vm0, /dev/v3-vm1' in plans['twin']['reason']
    assert plans['ok']['steps'] == ['create', 'launch']


def test_a_vm_in_a_transitional_state_is_an_error():
    plan = recover.plan_recover([record('a', 'running', 0)], [vm(0, 'a', 'UNKNOWN')])[0]
    assert plan['action'] == recover.ERROR and 'transitional' in plan['reason']


def test_a_stale_slot_now_holding_another_vm_is_not_acted_on():
    plan = recover.plan_recover([record('a', 'running', 0)], [vm(0, 'other', 'paused')])[0]
    assert plan['observed'] == 'none' and plan['steps'] == ['create', 'launch']


def kernel_after(guests, plans):
    """Apply the planned steps with the kernel model; new VMs take the lowest free slot."""
    state = dict((g.index, g) for g in guests)
    for plan in plans:
        current = [g for g in state.values() if g.name == plan['name']]
        slot = current[0].index if current else None
        observed = plan['observed']
        for step in plan['steps']:
            assert (observed, step) in KERNEL, 'kernel refuses %s from %s' % (step, observed)
            observed = KERNEL[(observed, step)]
            if step == 'create':
                slot = min(set(range(32)) - set(state))
            if observed == 'none':
                state.pop(slot, None)
            else:
                state[slot] = vm(slot, plan['name'], PROC_STATE[observed])
    return sorted(state.values())


KERNEL_STATES = ('none', 'stopped', 'running', 'paused', 'ERROR')


@pytest.mark.parametrize('kernel,desired', list(itertools.product(KERNEL_STATES, ('stopped', 'running', 'paused'))))
def test_recovery_is_legal_reaches_the_desired_state_and_is_idempotent(kernel, desired):
    records = [record('a', desired, 0)]
    guests = [] if kernel == 'none' else [vm(0, 'a', kernel)]
    plans = recover.plan_recover(records, guests)
    after = kernel_after(guests, plans)
    assert [(g.name, g.state) for g in after] == [('a', desired)]
    again = recover.plan_recover(records, after)
    assert again[0]['steps'] == [] and again[0]['action'] == recover.IN_STATE


def test_recovered_vms_get_their_old_slots_back():
    records = [record('b', 'running', 1), record('a', 'paused', 0), record('c', 'stopped', 2)]
    after = kernel_after([], recover.plan_recover(records, []))
    assert [(g.index, g.name) for g in after] == [(0, 'a'), (1, 'b'), (2, 'c')]


# -- check mode: predicted kernel changes (vm.with_predictions) ----------------------------------

def snapshot(guests, free_blocks):
    info = {'runtime_block_size': MB128, 'cpus': 4, 'nodes': 1}
    pools = [Pool(0x7f400000, 22, 4194304, 4161536)] + \
        [Pool(0x8000000 * (i + 1), 27, MB128, MB128 if i < free_blocks else 0) for i in range(4)]
    return Snapshot(True, guests, info, {0: {'pools': pools}})


def test_predicted_vms_take_slots_and_memory():
    snap = snapshot([vm(0, 'a')], free_blocks=2)
    assert snap.free_blocks() == 2
    seen = with_predictions(snap, {1: vm(1, 'b')})
    assert [g.name for g in seen.guests] == ['a', 'b'] and seen.free_blocks() == 1
    assert seen.free_slots()[0] == 2


def test_predicted_free_gives_memory_back_and_the_slot_is_reused():
    snap = snapshot([vm(0, 'a'), vm(1, 'b')], free_blocks=0)
    seen = with_predictions(snap, {0: None})
    assert [g.name for g in seen.guests] == ['b'] and seen.free_blocks() == 1 and seen.free_slots()[0] == 0


def test_predicted_state_change_keeps_memory():
    snap = snapshot([vm(0, 'a', 'stopped')], free_blocks=1)
    seen = with_predictions(snap, {0: vm(0, 'a', 'running')})
    assert seen.guests[0].state == 'running' and seen.free_blocks() == 1


def test_no_predictions_is_the_snapshot_itself():
    snap = snapshot([], free_blocks=1)
    assert with_predictions(snap, {}) is snap
