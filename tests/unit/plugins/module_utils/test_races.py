"""A person running v3 tools by hand while a batch converges (issue 8, concurrency): the
simulator's hook fault runs their commands between the engine's observation and its next
action, deterministically. Slots are reused (gotcha 10) and the kernel allows duplicate names,
so every wave re-checks its slots and every create its name against the latest /proc read; the
simulator's targets.log shows which VM each tool run reached."""
import json
import os

import pytest

from simhost import make_sim
from test_vms_engine import batch


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    return make_sim(tmp_path_factory.mktemp('template') / 'sim')


@pytest.fixture
def sim(template, tmp_path):
    return template.copy(tmp_path / 'sim')


def by_hand(sim, tool, commands, after=0):
    """Before the (after+1)-th run of `tool` acts, run `commands` as a person would."""
    sim.tool('v3sim', 'fault', 'add', tool, 'hook', '--run', commands, '--after', str(after))


def reached(sim):
    """(caller, tool, VM name in the slot when it acted) per tool run that reached a VM."""
    path = os.path.join(sim.root, 'targets.log')
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [(e['caller'], e['argv'][0], e['vm']) for e in map(json.loads, handle)]


def engine_reached(sim):
    return [(tool, vm) for caller, tool, vm in reached(sim) if caller != 'hook']


def slots(sim):
    return dict((name, slot) for name, (_state, _mem, slot) in sim.kernel().items())


def test_a_slot_freed_and_reused_by_hand_before_its_wave_is_not_freed(sim):
    batch(sim, [('keep', 'running', 'small', False, False), ('gone', 'stopped', 'small', False, False)])
    assert slots(sim) == {'keep': 0, 'gone': 1}
    # Between the stop wave and the free wave, someone frees slot 1 and makes "intruder" there.
    by_hand(sim, 'v3_stop', 'v3_free 1 ; v3_create -b %s intruder' % sim.xml['small'])
    out, _host = batch(sim, [('keep', 'stopped', 'small', False, False), ('gone', 'absent', None, False, False)])
    kernel = sim.kernel()
    assert kernel['intruder'][2] == 1 and kernel['keep'][0] == 'stopped'
    (gone,) = [item for item in out['vms'] if item['name'] == 'gone']
    assert 'now holds VM' in gone['error'] and gone['steps'] == [] and gone['changed'] is False
    assert ('v3_free', 'intruder') not in engine_reached(sim)
    assert ('hook', 'v3_free', 'gone') in reached(sim)


def test_a_vm_made_by_hand_after_the_observation_gets_no_twin(sim):
    batch(sim, [('keep', 'running', 'small', False, False)])
    # The batch observes "fresh" absent; before its create wave, someone creates "fresh" by hand.
    by_hand(sim, 'v3_stop', 'v3_create -b %s fresh' % sim.xml['small'])
    out, _host = batch(sim, [('keep', 'stopped', 'small', False, False), ('fresh', 'running', 'small', False, False)])
    guests = sim.host().reader.guests()
    assert [e.name for e in guests].count('fresh') == 1
    (fresh,) = [item for item in out['vms'] if item['name'] == 'fresh']
    assert 'appeared at /dev/v3-vm1' in fresh['error'] and fresh['steps'] == [] and fresh['changed'] is False
    assert 'fresh' not in sim.records()       # the VM made by hand is not recorded as this run's
    assert not any(tool == 'v3_create' for tool, _vm in engine_reached(sim)[1:])


def test_a_created_vm_replaced_by_hand_before_the_launch_wave_is_not_launched(sim):
    # Before the second create acts, someone frees the first VM (created, so stopped) and reuses its slot.
    by_hand(sim, 'v3_create', 'v3_free 0 ; v3_create -b %s intruder' % sim.xml['small'], after=1)
    out, _host = batch(sim, [('a', 'running', 'small', False, False), ('b', 'running', 'small', False, False)])
    kernel = sim.kernel()
    assert kernel['intruder'][:1] == ('stopped',) and kernel['intruder'][2] == 0
    assert kernel['b'][0] == 'running' and 'a' not in kernel
    (a,) = [item for item in out['vms'] if item['name'] == 'a']
    assert 'now holds VM' in a['error']
    assert engine_reached(sim) == [('v3_create', 'a'), ('v3_create', 'b'), ('v3_launch', 'b')]


def test_the_check_sees_a_run_that_reached_another_vm(sim):
    """targets.log is what the concurrency test trusts: a tool run on a slot that holds another VM
    than the caller meant shows that VM."""
    batch(sim, [('mine', 'stopped', 'small', False, False), ('theirs', 'running', 'small', False, False)])
    sim.tool('v3_launch', '/dev/v3-vm1')
    assert engine_reached(sim)[-1] == ('v3_launch', 'theirs')
