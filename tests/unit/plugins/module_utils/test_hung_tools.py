"""A hung v3 tool against the simulator (hang faults, real subprocesses): the engine kills it at
its deadline, re-reads /proc, records what it shows and reports the tool, its argv, how long it ran
and the state found; in a batch (recover) the other VMs still converge."""
import time

import pytest
from simhost import install_template, loaded_sim

from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore, new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory_run import InventoryRun
from ansible_collections.v3vee.palacios.plugins.module_utils.memory import MemoryHost
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import KILL_GRACE, ToolTimeout
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import VmJob

MB = 1048576
# A correctness bound (the hang is 30 s), not a speed figure.
BOUND = 15


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    return install_template(tmp_path_factory)


@pytest.fixture
def sim(template, tmp_path):
    sim = loaded_sim(template, tmp_path / 'host')
    return sim


def definition(path):
    return {'image': None, 'config': path, 'config_options': {}}


@pytest.mark.parametrize('flags, killed_by', [((), 'SIGTERM'), (('--ignore-sigterm',), 'SIGKILL')])
def test_a_hung_launch_is_killed_at_the_deadline_and_the_truth_recorded(sim, flags, killed_by):
    sim.ok('v3sim', 'fault', 'add', 'v3_launch', 'hang', '--seconds', '30', *flags)
    host = sim.host(timeout=1)
    store = InventoryStore(sim.settings.inventory_path)
    started = time.time()
    with pytest.raises(ToolTimeout) as err:
        with store.transaction():
            host.converge(store, 'web', 'running', definition=definition(sim.xml('web', 64)))
    elapsed = time.time() - started
    assert elapsed < BOUND
    exc = err.value
    assert exc.killed_by == killed_by and exc.tool == 'v3_launch'
    assert exc.argv == [sim.settings.tools_dir + '/v3_launch', sim.settings.dev_dir + '/v3-vm0']
    assert 1 <= exc.elapsed < 1 + KILL_GRACE + (1 if killed_by == 'SIGTERM' else 5)
    assert str(exc).startswith('v3_launch did not finish within its deadline of 1s: ran ')
    assert str(exc).endswith("Found afterwards: %s/v3-guests shows VM 'web' at /dev/v3-vm0 stopped."
                             % sim.settings.proc_dir)
    assert exc.observed['state'] == 'stopped'
    assert [(e.name, e.state) for e in sim.guests()] == [('web', 'stopped')]   # killed before it acted
    record = store.get('web')
    assert (record['slot'], record['observed_state'], record['desired_state']) == (0, 'stopped', 'running')
    assert [argv[0].rsplit('/', 1)[1] for argv in host.tools.commands] == ['v3_create', 'v3_launch']


def test_recover_with_one_hung_vm_converges_the_others_within_a_bound(sim):
    sim.ok('v3_mem', '-a', 128)                      # a 128 MB block per VM
    store = InventoryStore(sim.settings.inventory_path)
    xml = sim.xml('vm', 32)
    with store.transaction():
        for name in ('a', 'b', 'c'):
            store.put(new_record(name, definition(xml), None, None, 'inactive', 'running'))
    sim.ok('v3sim', 'fault', 'add', 'v3_launch', 'hang', '--seconds', '30', '--ignore-sigterm')

    class Session(object):
        settings = sim.settings
        host = sim.host(timeout=1)
    params = dict(gui_import=None, vms=[], adopt=[], reconcile=False, recover=True, gui_export=None,
                  import_conflict='keep', force=False)
    started = time.time()
    with store.transaction():
        result = InventoryRun(Session, store, params).run()
    assert time.time() - started < BOUND
    errors = dict((item['name'], item['error']) for item in result['recover'])
    assert errors['b'] is None and errors['c'] is None
    assert errors['a'].startswith('v3_launch did not finish within its deadline of 1s')
    assert "shows VM 'a' at /dev/v3-vm0 stopped" in errors['a']
    assert result['failed'] and result['errors'][0]['name'] == 'a'
    assert [(e.name, e.state) for e in sim.guests()] == [('a', 'stopped'), ('b', 'running'), ('c', 'running')]
    assert [(store.get(n)['slot'], store.get(n)['observed_state']) for n in 'abc'] == [
        (0, 'stopped'), (1, 'running'), (2, 'running')]


def test_a_hung_v3_mem_is_killed_and_the_pools_found_reported(sim):
    sim.ok('v3sim', 'fault', 'add', 'v3_mem', 'hang', '--seconds', '30', '--ignore-sigterm')
    host = sim.host()
    memory = MemoryHost(host.tools, host.reader, sim.settings.palacios_dir, 1)
    _info, before = memory.observe()
    started = time.time()
    with pytest.raises(ToolTimeout) as err:
        memory.execute({'op': 'add', 'node': 0, 'size': 128 * MB, 'argv': ['-a', '128']}, [])
    assert time.time() - started < BOUND
    exc = err.value
    assert exc.killed_by == 'SIGKILL' and exc.argv[1:] == ['-a', '128']
    assert str(exc).startswith('v3_mem did not finish within its deadline of 1s: ran ')
    assert 'Found afterwards: v3-mem0 lists 0x' in str(exc) and str(exc).count('(128 MB, 128 MB free)') == 2
    assert memory.observe()[1] == before                                        # killed before it acted
    assert len(exc.observed['0']) == 3


def test_v3_create_gets_time_to_read_a_large_image(sim, tmp_path):
    image = tmp_path / 'big.img'
    with open(str(image), 'wb') as handle:
        handle.truncate(64 * MB)
    executor = sim.host(timeout=7).executor
    job = VmJob('big', 'stopped')
    job.plan = type('Plan', (), {'definition': {'image': str(image), 'config': None}})()
    assert executor.create_deadline(job) == 7 + 4
    job.plan.definition = definition(sim.xml('small', 4))
    assert executor.create_deadline(job) == 7
