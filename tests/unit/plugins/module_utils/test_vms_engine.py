"""Host.converge_all (v3vee_vms, v3vee_inventory recover) against an in-process simulated host:
parity with a loop of single-VM converges (v3vee_vm), waves, batch capacity, exclusive mode,
partial failure, and check mode predicting the real run."""
import random

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import proc
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import CONTENT_FIELDS
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import (
    DESIRED_STATES, KERNEL_DESIRED, KERNEL_STEPS, OBSERVED_STATES, plan_vm)
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_definition
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import WAVES, VmJob, batch_result

from simhost import make_sim

NAMES = ('alpha', 'beta', 'gamma', 'delta')


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    return make_sim(tmp_path_factory.mktemp('template') / 'sim')


@pytest.fixture
def sim(template, tmp_path):
    return template.copy(tmp_path / 'sim')


def definition(sim, size):
    if size is None:
        return None, None
    spec = {'image': None, 'config': sim.xml[size], 'config_options': {}}
    return spec, check_definition(**spec)


def jobs_for(sim, items):
    """items: (name, state, size or None, force, recreate)"""
    jobs = []
    for name, state, size, force, recreate in items:
        spec, shape = definition(sim, size)
        jobs.append(VmJob(name, state, spec, shape, force, recreate))
    return jobs


def batch(sim, items, check_mode=False, **kwargs):
    host = sim.host(check_mode=check_mode)
    store = sim.store(readonly=check_mode)
    with store.transaction():
        jobs = host.converge_all(store, jobs_for(sim, items), **kwargs)
    return batch_result(jobs), host


def loop(sim, items):
    """What a loop of v3vee_vm tasks (ignore_errors) does: one converge per VM, in list order."""
    errors = set()
    for job in jobs_for(sim, items):
        host = sim.host()
        store = sim.store()
        try:
            with store.transaction():
                host.converge(store, job.name, job.desired, job.definition, job.force, job.recreate, job.shape)
        except V3veeError:
            errors.add(job.name)
    return errors


def world(sim):
    """Kernel and inventory, without slot numbers (frees run before creates in a batch, so a new VM
    may take another slot than in a loop), but checking each record points at its VM's slot."""
    kernel = sim.kernel()
    records = sim.records()
    for name, record in records.items():
        if name in kernel:
            assert record['slot'] == kernel[name][2] and record['device'] == '/dev/v3-vm%d' % kernel[name][2]
    for record in records.values():
        record['config'] = record['config'].replace(sim.root, '<root>')  # each host has its own XMLs
    return (dict((n, v[:2]) for n, v in kernel.items()),
            dict((n, dict((k, r[k]) for k in CONTENT_FIELDS if k not in ('slot', 'device'))) for n, r in records.items()))


def random_items(rng):
    items = []
    for name in rng.sample(NAMES, rng.randint(1, len(NAMES))):
        items.append((name, rng.choice(DESIRED_STATES), rng.choice([None, 'small', 'small', 'big']),
                      rng.random() < 0.7, rng.random() < 0.5))
    return items


def make_error(sim, name):
    """Make a kernel VM fail (state ERROR), as a crashed guest does."""
    slot = sim.kernel()[name][2]
    sim.tool('v3sim', 'vm-error', str(slot))


@pytest.mark.parametrize('seed', range(40))
def test_a_batch_leaves_the_same_vms_and_records_as_a_loop_of_single_converges(sim, tmp_path, seed):
    rng = random.Random(seed)
    other = sim.copy(tmp_path / 'other')
    for _round in range(4):
        items = random_items(rng)
        broken = [n for n in sim.kernel() if rng.random() < 0.1]
        for name in broken:
            make_error(sim, name)
            make_error(other, name)
        loop_errors = loop(sim, items)
        result, _host = batch(other, items)
        assert set(e['name'] for e in result.get('errors', [])) == loop_errors, items
        assert world(other) == world(sim), items


def test_every_plan_runs_in_wave_order():
    # converge_all runs one wave per step kind in WAVES order: every plan must be a subsequence.
    rank = dict((step, i) for i, step in enumerate(WAVES))
    record = {'image': '/a.img', 'config': None, 'config_options': {}, 'desired_state': 'running'}
    new = {'image': '/b.img', 'config': None, 'config_options': {}}
    for observed in OBSERVED_STATES:
        for desired in DESIRED_STATES:
            plans = [KERNEL_STEPS[(observed, desired)]]
            if observed in KERNEL_DESIRED and desired in ('present',) + KERNEL_DESIRED:
                plans.append(plan_vm('x', observed, record, new, desired, force=True, recreate=True).steps)
            for steps in plans:
                assert [rank[s] for s in steps] == sorted(rank[s] for s in steps) and len(set(steps)) == len(steps)


def count_reads(monkeypatch):
    reads = {'n': 0}
    original = proc.ProcReader._read

    def counting(self, name):
        reads['n'] += 1
        return original(self, name)
    monkeypatch.setattr(proc.ProcReader, '_read', counting)
    return reads


def test_one_proc_observation_plans_the_batch_and_each_wave_shares_its_reads(sim, monkeypatch):
    reads = count_reads(monkeypatch)
    result, host = batch(sim, [('vm%02d' % i, 'paused', 'small', False, False) for i in range(16)])
    assert result['summary']['steps'] == {'create': 16, 'launch': 16, 'pause': 16}
    assert len(host.tools.commands) == 48
    # planning snapshot (info, guests, mem0) + about one v3-guests read per wave (3 waves), not per VM
    assert reads['n'] <= 3 + 2 * 3, reads


def test_frees_run_before_creates_so_a_full_host_can_swap_vms(tmp_path):
    full = [('old%d' % i, 'running', 'small', False, False) for i in range(4)]
    small = make_sim(tmp_path / 'small', blocks=4)
    batch(small, full)
    # Swapping: the new VMs come first in the list, yet the old ones' memory is freed first.
    swap = [('new%d' % i, 'running', 'small', False, False) for i in range(4)] + \
        [('old%d' % i, 'absent', None, True, False) for i in range(4)]
    result, host = batch(small, swap)
    assert 'errors' not in result, result.get('msg')
    assert sorted(small.kernel()) == ['new0', 'new1', 'new2', 'new3']
    tools = [argv[0].rsplit('/', 1)[1] for argv in host.tools.commands]
    assert tools == ['v3_stop'] * 4 + ['v3_free'] * 4 + ['v3_create'] * 4 + ['v3_launch'] * 4


def test_memory_is_checked_for_the_whole_batch_before_any_create(tmp_path):
    small = make_sim(tmp_path / 'small', blocks=2)
    items = [('a', 'running', 'small', False, False), ('b', 'running', 'big', False, False),
             ('c', 'running', 'small', False, False)]
    result, host = batch(small, items)
    assert [e['name'] for e in result['errors']] == ['b']
    assert 'Not enough memory' in result['errors'][0]['msg']
    assert sorted(small.kernel()) == ['a', 'c']
    assert not any('b' == argv[-1] for argv in host.tools.commands)  # never tried


def outcome(result):
    """Per VM: steps, the VM after (timestamps aside: the runs are seconds apart), changed, error."""
    return [(i['name'], i['steps'], dict((k, v) for k, v in i['vm'].items() if not k.endswith('_at')),
             i['changed'], i['error']) for i in result['vms']]


def test_check_mode_predicts_slots_memory_and_steps_of_the_real_run(sim):
    rng = random.Random(7)
    for _round in range(6):
        items = random_items(rng)
        predicted, check_host = batch(sim, items, check_mode=True)
        assert check_host.tools.commands == []
        real, _host = batch(sim, items)
        assert outcome(predicted) == outcome(real)
        assert predicted['summary'] == real['summary']


def test_check_real_check_real_reports_changed_changed_unchanged_unchanged(sim):
    items = [('web', 'running', 'small', False, False), ('db', 'paused', 'big', False, False),
             ('spare', 'stopped', 'small', False, False)]
    changed = [batch(sim, items, check_mode=check)[0]['changed'] for check in (True, False, True, False)]
    assert changed == [True, True, False, False]


def test_exclusive_refuses_to_stop_unlisted_running_vms_without_force_and_does_nothing(sim):
    batch(sim, [('keep', 'running', 'small', False, False), ('extra', 'running', 'small', False, False)])
    sim.tool('v3_create', '-b', sim.xml['small'], 'stray')
    before = (sim.kernel(), sim.records())
    with pytest.raises(V3veeError, match="'extra' \\(/dev/v3-vm1, running\\)"):
        batch(sim, [('keep', 'running', None, False, False)], exclusive=True)
    assert (sim.kernel(), sim.records()) == before


def test_exclusive_with_force_removes_unlisted_kernel_and_inventory_vms(sim):
    batch(sim, [('keep', 'running', 'small', False, False), ('extra', 'paused', 'small', False, False),
                ('shelved', 'inactive', 'small', False, False)])
    sim.tool('v3_create', '-b', sim.xml['small'], 'stray')  # created by hand: not in the inventory
    result, _host = batch(sim, [('keep', 'running', None, False, False)], exclusive=True, force_unlisted=True)
    assert sorted(sim.kernel()) == ['keep'] and sorted(sim.records()) == ['keep']
    unlisted = dict((i['name'], i['steps']) for i in result['vms'] if i['unlisted'])
    assert unlisted == {'extra': ['continue', 'stop', 'free'], 'shelved': [], 'stray': ['free']}


def test_one_failing_vm_does_not_stop_the_others_and_its_record_tells_the_truth(sim):
    sim.tool('v3sim', 'fault', 'add', 'v3_launch', 'refuse', '--count', '1')
    items = [('a', 'running', 'small', False, False), ('b', 'running', 'small', False, False),
             ('c', 'running', 'small', False, False)]
    result, _host = batch(sim, items)
    assert result['failed'] and [e['name'] for e in result['errors']] == ['a']
    assert 'launch' in result['errors'][0]['msg'] and result['msg'].startswith('1 of 3 VM(s) failed')
    assert sim.kernel()['a'][0] == 'stopped' and sim.kernel()['b'][0] == sim.kernel()['c'][0] == 'running'
    record = sim.records()['a']
    assert (record['observed_state'], record['desired_state'], record['slot']) == ('stopped', 'running', 0)
    failed = result['vms'][0]
    assert failed['changed'] and failed['steps'] == ['create', 'launch'] and failed['vm']['state'] == 'stopped'
    # The next run finishes the job.
    again, _host = batch(sim, items)
    assert 'errors' not in again and again['summary']['steps'] == {'launch': 1}


def test_a_vm_whose_re_create_cannot_fit_keeps_running_and_its_memory_is_not_promised_to_others(tmp_path):
    small = make_sim(tmp_path / 'small', blocks=2)
    batch(small, [('a', 'running', 'small', False, False), ('b', 'running', 'small', False, False)])
    # a would free 1 block and need 2: it fails, so its block never comes back and c cannot have it.
    result, host = batch(small, [('a', 'running', 'big', False, True), ('c', 'running', 'small', False, False)])
    assert [e['name'] for e in result['errors']] == ['a', 'c']
    assert host.tools.commands == []
    assert small.kernel()['a'][0] == 'running' and 'c' not in small.kernel()
