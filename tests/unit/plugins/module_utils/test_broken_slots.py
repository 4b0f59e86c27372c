"""The engine against the simulator (v3sim, real subprocesses) where real Palacios is dangerous:
a v3_create without pool memory crashes the kernel and leaves a ghost ("broken") slot (interface
spec, observed item 14). The collection must never cause that, and must cope when a person did.
"""
import random
import signal
import time

import pytest
from simhost import install_template, loaded_sim, new_sim

from ansible_collections.v3vee.palacios.plugins.module_utils import facts
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore, new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory_run import InventoryRun
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import is_broken
from ansible_collections.v3vee.palacios.plugins.module_utils.reconcile import (
    BROKEN_SLOT, INACTIVE_INVENTORY, classify)
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner

MB = 1048576


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    return install_template(tmp_path_factory)


@pytest.fixture
def ghost(template, tmp_path):
    """Two 128 MB pools held by a stopped VM (slot 0) and a running one (slot 1); then a person's
    v3_create of 'fresh' crashed the kernel and left slot 2 broken."""
    sim = loaded_sim(template, tmp_path / 'host')
    xml = sim.xml('vm', 128)
    sim.ok('v3_create', '-b', xml, 'a')
    sim.ok('v3_create', '-b', xml, 'b')
    sim.ok('v3_launch', '/dev/v3-vm1')
    assert sim.tool('v3_create', '-b', xml, 'fresh').returncode == -signal.SIGKILL
    return sim


def definition(path):
    return {'image': None, 'config': path, 'config_options': {}}


def test_a_broken_slot_is_not_waited_on_and_a_vm_of_its_name_is_never_acted_on(ghost):
    host = ghost.host(timeout=30)
    start = time.time()
    snap = host.snapshot(memory=True)
    assert time.time() - start < 10                  # not the 30 s wait for a transitional state
    assert [e.index for e in snap.broken()] == [2] and snap.free_slots()[0] == 3
    store = InventoryStore(ghost.settings.inventory_path)
    for desired in ('absent', 'running', 'stopped', 'inactive'):
        with pytest.raises(V3veeError, match=r"(?s)'fresh' cannot be managed now; nothing was run.*only a reboot"):
            with store.transaction():
                host.converge(store, 'fresh', desired, definition=definition(ghost.xml('fresh', 128)))
    assert host.tools.commands == []
    assert store.get('fresh') is None
    assert [e.state for e in ghost.guests()] == ['stopped', 'running', 'UNAVAILABLE']


def test_a_record_linked_to_a_broken_slot_becomes_inactive_with_broken_slot_drift(ghost):
    store = InventoryStore(ghost.settings.inventory_path)
    with store.transaction():
        store.put(new_record('web', definition(ghost.xml('web', 128)), 2, '/dev/v3-vm2', 'running', 'running'))
    item = [i for i in classify(store.all(), ghost.guests()) if i['name'] == 'web'][0]
    assert item['category'] == INACTIVE_INVENTORY and item['entry'] is None
    assert BROKEN_SLOT in item['drift'] and 'slot_gone' not in item['drift']

    class Session(object):
        settings = ghost.settings
        host = ghost.host()
    params = dict(gui_import=None, vms=[], adopt=[], reconcile=True, recover=False, gui_export=None,
                  import_conflict='keep', force=False)
    with store.transaction():
        result = InventoryRun(Session, store, params).run()
    assert result['reconcile'][0]['drift'][0] == BROKEN_SLOT and result['reconcile'][0]['state'] == 'inactive'
    assert store.get('web')['slot'] is None and store.get('web')['desired_state'] == 'running'
    assert result['broken_slots'] == [{'slot': 2, 'name': 'fresh', 'device': '/dev/v3-vm2',
                                       'remedy': result['broken_slots'][0]['remedy']}]
    assert 'reboot' in result['broken_slots'][0]['remedy']
    assert any('reboot' in w and '/dev/v3-vm2' in w for w in Session.host.warnings)


def test_facts_show_the_broken_slot_and_the_reboot_remedy(ghost):
    out = facts.gather(ghost.settings, subprocess_runner, subsets=['host', 'vms', 'memory'], vm_details=True)
    assert out['host']['vm_slots_used'] == 3 and out['host']['vm_slots_free'] == 29
    assert [(b['slot'], b['name']) for b in out['host']['broken_slots']] == [(2, 'fresh')]
    fresh = [vm for vm in out['vms'] if vm['name'] == 'fresh'][0]
    assert fresh['broken'] and 'reboot' in fresh['remedy'] and fresh['drift'] == [BROKEN_SLOT]
    assert fresh['category'] == 'not_in_inventory' and fresh['slot'] == 2
    assert out['vm_counts']['broken'] == 1 and 'fresh' not in out['vms_by_name']
    assert any('/dev/v3-vm2' in p and 'reboot' in p for p in out['problems'])


def test_recover_reports_a_broken_slot_of_a_recorded_name_and_creates_nothing_for_it(ghost):
    store = InventoryStore(ghost.settings.inventory_path)
    with store.transaction():
        store.put(new_record('fresh', definition(ghost.xml('fresh', 1)), desired_state='running'))

    class Session(object):
        settings = ghost.settings
        host = ghost.host()
    params = dict(gui_import=None, vms=[], adopt=[], reconcile=False, recover=True, gui_export=None,
                  import_conflict='keep', force=False)
    with store.transaction():
        result = InventoryRun(Session, store, params).run()
    assert result['failed'] and 'only a reboot' in result['recover'][0]['error']
    assert Session.host.tools.commands == []
    assert len(ghost.guests()) == 3


# -- the capacity check leaves no way to the crash ----------------------------------------------
BLOCKS_MB = (2, 3, 4, 6, 32, 64, 128, 256)
VM_MB = (1, 2, 3, 4, 5, 8, 30, 64, 100, 128, 129, 200, 256, 300)


def layout(sim, rng):
    """Random simulated host: 1-2 nodes, a run-time block size, a few pools of either kind (v3_mem
    refuses some of them, e.g. a 4 MB pool with a larger block size: those are simply not there)."""
    nodes = rng.choice((1, 2))
    sim.ok('v3sim', 'host', '--nodes', nodes, '--memory-mb', 4096)
    sim.ok('v3sim', 'load', '--options', 'mem_block_size=%d' % (rng.choice(BLOCKS_MB) * MB))
    for _pool in range(rng.randint(0, 4)):
        node = rng.randrange(nodes)
        if rng.random() < 0.5:
            sim.tool('v3_mem', '-k', '-a', 4, '-n', node)       # largest kernel allocation: 4 MB
        else:
            sim.tool('v3_mem', '-a', 128, '-n', node)            # one hot-removed block


@pytest.mark.parametrize('seed', range(24))
def test_engine_refuses_exactly_the_creates_that_would_crash_the_kernel(template, tmp_path, seed):
    """Seeded random layouts: whenever preflight accepts a create, v3_create succeeds; whenever it
    refuses for memory, the same v3_create run by hand crashes the simulated kernel."""
    rng = random.Random(seed)
    sim = new_sim(template, tmp_path / 'host')
    layout(sim, rng)
    store = InventoryStore(sim.settings.inventory_path)
    host = sim.host(timeout=5)
    for number in range(rng.randint(3, 7)):
        name, mem = 'vm%d' % number, rng.choice(VM_MB)
        xml = sim.xml(name, mem)
        if rng.random() < 0.3 and store.all():
            victim = rng.choice(store.all())['name']
            with store.transaction():
                host.converge(store, victim, 'absent')
        try:
            with store.transaction():
                host.converge(store, name, 'stopped', definition=definition(xml))
        except V3veeError as err:
            assert 'Not enough memory' in err.msg, (seed, name, mem, err.msg)
            assert not [e for e in sim.guests() if is_broken(e)], seed
            res = sim.tool('v3_create', '-b', xml, name)
            assert res.returncode == -signal.SIGKILL, (seed, name, mem, 'refused a create that fits')
            return                                   # the host has a ghost now: this layout is done
        assert not [e for e in sim.guests() if is_broken(e)], (seed, name, mem, 'the engine crashed the kernel')
        assert store.get(name)['observed_state'] == 'stopped'


@pytest.mark.parametrize('seed', range(6))
def test_recover_of_a_batch_never_crashes_the_kernel_and_check_mode_predicts_it(template, tmp_path, seed):
    rng = random.Random(1000 + seed)
    sim = new_sim(template, tmp_path / 'host')
    layout(sim, rng)
    store = InventoryStore(sim.settings.inventory_path)
    with store.transaction():
        for number in range(rng.randint(2, 6)):
            name = 'vm%d' % number
            store.put(new_record(name, definition(sim.xml(name, rng.choice(VM_MB))),
                                 desired_state=rng.choice(('running', 'stopped', 'paused'))))
    params = dict(gui_import=None, vms=[], adopt=[], reconcile=False, recover=True, gui_export=None,
                  import_conflict='keep', force=False)
    outcomes = []
    for check_mode in (True, False):
        class Session(object):
            settings = sim.settings
            host = sim.host(check_mode=check_mode, timeout=5)
        store = InventoryStore(sim.settings.inventory_path, readonly=check_mode)
        with store.transaction():
            result = InventoryRun(Session, store, params).run()
        outcomes.append([(r['name'], r['state'], r['device'], bool(r['error'])) for r in result['recover']])
        for item in result['recover']:
            assert item['error'] is None or 'Not enough memory' in item['error'], (seed, item)
    assert outcomes[0] == outcomes[1], seed
    assert not [e for e in sim.guests() if is_broken(e)], seed


def test_a_block_size_that_is_not_a_power_of_two_costs_a_whole_buddy_block_per_region(template, tmp_path):
    """3 MB regions take 4 MB each from the buddy allocator: a 128 MB pool holds 32 of them, not 42,
    so a 100 MB VM (34 regions) must be refused; the kernel would crash on it."""
    sim = new_sim(template, tmp_path / 'host')
    sim.ok('v3sim', 'load', '--options', 'mem_block_size=%d' % (3 * MB))
    sim.ok('v3_mem', '-a', 128)
    store = InventoryStore(sim.settings.inventory_path)
    host = sim.host(timeout=5)
    assert host.snapshot(memory=True).free_blocks() == 32          # and none from the 4 MB seed pool
    xml = sim.xml('big', 100)
    with pytest.raises(V3veeError, match='Not enough memory'):
        with store.transaction():
            host.converge(store, 'big', 'stopped', definition=definition(xml))
    assert host.tools.commands == []
    assert sim.tool('v3_create', '-b', xml, 'big').returncode == -signal.SIGKILL


def test_memory_taken_between_the_check_and_v3_create_is_reported_as_the_crash_it_is(template, tmp_path):
    """A race the check cannot close (someone else creates a VM in between): the engine says the
    kernel crashed, shows the broken slot, and records nothing for the VM."""
    sim = new_sim(template, tmp_path / 'host')
    sim.ok('v3sim', 'load')
    sim.ok('v3_mem', '-a', 128)
    thief_xml, late_xml = sim.xml('thief', 128), sim.xml('late', 128)

    def racing_runner(argv, cwd=None, env_update=None, timeout=None):
        if argv[0].endswith('/v3_create'):
            sim.ok('v3_create', '-b', thief_xml, 'thief')
        return subprocess_runner(argv, cwd=cwd, env_update=env_update, timeout=timeout)
    host = sim.host()
    host.tools.runner = racing_runner
    store = InventoryStore(sim.settings.inventory_path)
    with pytest.raises(V3veeError, match=r"v3_create of 'late' crashed the kernel: Slot /dev/v3-vm1 .*only a reboot") as err:
        with store.transaction():
            host.converge(store, 'late', 'running', definition=definition(late_xml))
    assert err.value.rc in (-9, 137)
    assert [(e.name, e.state) for e in sim.guests()] == [('thief', 'stopped'), ('late', 'UNAVAILABLE')]
    assert store.get('late') is None
