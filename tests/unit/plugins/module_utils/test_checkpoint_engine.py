"""v3vee_checkpoint's engine against the simulator (in process, 4 MB guests so every save is cheap):
what a save keeps and when, what a restore checks before any tool runs, and how every step is
verified (the tools' exit codes never count)."""
import json
import os
import sqlite3

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import checkpoint as ck
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import MIGRATIONS, InventoryStore, new_record

from simhost import in_process_runner, make_sim

DEF = {'image': None, 'config_options': {}}


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    sim = make_sim(tmp_path_factory.mktemp('ckpt') / 'sim', blocks=16)
    sim.tool('v3sim', 'unload')
    sim.tool('v3sim', 'host', '--features', 'checkpoint')
    sim.tool('v3sim', 'load', '--options', 'mem_block_size=%d' % (4 << 20))
    for _block in range(16):
        sim.tool('v3_mem', '-k', '-a', '4')
    return sim


@pytest.fixture
def sim(template, tmp_path):
    return template.copy(tmp_path / 'sim')


def vm(sim, name, state, size='small'):
    store = sim.store()
    with store.transaction():
        sim.host().converge(store, name, state, definition=dict(DEF, config=sim.xml[size]), force=True)


def run(sim, op, *args, **kwargs):
    """One module run: a fresh Host and store, in a transaction, as run_module does."""
    check = kwargs.pop('check_mode', False)
    host = sim.host(check_mode=check)
    store = sim.store(readonly=check)
    ops = ck.Checkpoints(host, store, sim.settings.inventory_path, in_process_runner,
                         kernel_log=os.path.join(sim.root, 'kmsg.log'))
    with store.transaction():
        result = getattr(ops, op)(*args, **kwargs)
    result['commands'] = [os.path.basename(argv[0]) for argv in host.tools.commands]
    return result


def details_rips(sim, name):
    snap = sim.host().reader.snapshot(details=True)
    slot = [e.index for e in snap.guests if e.name == name][0]
    return ck.recorded_rips(snap.details, slot)


def test_save_keeps_a_running_vm_running_and_describes_every_file(sim, tmp_path):
    vm(sim, 'a', 'running')
    path = str(tmp_path / 'ck' / 'a')
    result = run(sim, 'save', 'a', path, 'DIR')
    assert result['changed'] and result['steps'] == ['save'] and result['commands'] == ['v3_save']
    assert sim.kernel()['a'][0] == 'running' and result['vm']['state'] == 'running'
    manifest = json.load(open(os.path.join(path, ck.MANIFEST)))
    assert dict(manifest, path=path) == result['checkpoint']
    assert manifest['files']['memory_img']['size'] == (4 << 20) + 12 and manifest['files']['header']['size'] == 47
    assert manifest['rips'] is None and manifest['vm_state'] == 'running' and manifest['url'] == path
    assert manifest['definition']['config'] == sim.xml['small'] and '<memory>4</memory>' in manifest['definition']['config_xml']
    assert oct(os.stat(os.path.join(path, ck.MANIFEST)).st_mode & 0o777) == '0o600'
    assert os.listdir(str(tmp_path / 'ck')) == ['a']          # the fresh sibling was renamed, nothing left
    assert sim.store(readonly=True).checkpoint(path)['vm'] == 'a'
    again = run(sim, 'save', 'a', path, 'DIR')
    assert not again['changed'] and again['commands'] == []


def test_check_mode_save_predicts_and_touches_nothing(sim, tmp_path):
    vm(sim, 'a', 'running')
    path = str(tmp_path / 'a')
    result = run(sim, 'save', 'a', path, 'DIR', pause=True, check_mode=True)
    assert result['steps'] == ['pause', 'save'] and result['commands'] == [] and result['vm']['state'] == 'paused'
    assert not os.path.exists(path) and sim.kernel()['a'][0] == 'running'


def test_a_refused_save_never_replaces_the_older_checkpoint(sim, tmp_path):
    vm(sim, 'a', 'paused')
    path = str(tmp_path / 'ck' / 'a')
    first = run(sim, 'save', 'a', path, 'DIR')
    sim.tool('v3sim', 'fault', 'add', 'v3_save', 'refuse')
    with pytest.raises(ck.StepError) as err:
        run(sim, 'save', 'a', path, 'DIR', force=True)
    assert err.value.step == 'save' and 'not complete: v3_save wrote nothing' in err.value.msg
    assert json.load(open(os.path.join(path, ck.MANIFEST)))['saved_at'] == first['checkpoint']['saved_at']
    assert os.listdir(str(tmp_path / 'ck')) == ['a']


def test_a_paused_save_records_the_rip_a_stopped_restore_shows(sim, tmp_path):
    vm(sim, 'a', 'paused')
    path = str(tmp_path / 'a')
    saved = run(sim, 'save', 'a', path, 'DIR')['checkpoint']
    assert [int(r, 16) for r in saved['rips']] == details_rips(sim, 'a') != [ck.FRESH_RIP]
    result = run(sim, 'restore', 'a', path, 'DIR', vm_state='stopped', force=True)
    assert result['steps'] == ['continue', 'stop', 'free', 'create', 'load']
    assert details_rips(sim, 'a') == [int(r, 16) for r in saved['rips']]
    assert sim.records()['a']['desired_state'] == 'stopped'


@pytest.mark.parametrize('before', ['none', 'stopped', 'running', 'paused'])
@pytest.mark.parametrize('after', ['stopped', 'running', 'paused'])
def test_restore_steps_from_each_state_into_each_state_as_check_mode_predicts(sim, tmp_path, before, after):
    vm(sim, 'a', 'paused')
    path = str(tmp_path / 'a')
    run(sim, 'save', 'a', path, 'DIR')
    vm(sim, 'a', 'inactive' if before == 'none' else before)
    force = before != 'none'
    predicted = run(sim, 'restore', 'a', path, 'DIR', vm_state=after, force=force, check_mode=True)
    result = run(sim, 'restore', 'a', path, 'DIR', vm_state=after, force=force)
    teardown = {'none': [], 'stopped': ['free'], 'running': ['stop', 'free'], 'paused': ['continue', 'stop', 'free']}
    build = {'stopped': [], 'running': ['launch'], 'paused': ['launch', 'pause']}
    assert result['steps'] == predicted['steps'] == teardown[before] + ['create', 'load'] + build[after]
    assert predicted['commands'] == []
    assert sim.kernel()['a'][0] == after == result['vm']['state'] == predicted['vm']['state']
    assert result['vm']['slot'] == predicted['vm']['slot']


def test_an_existing_vm_needs_force(sim, tmp_path):
    vm(sim, 'a', 'running')
    run(sim, 'save', 'a', str(tmp_path / 'a'), 'DIR')
    with pytest.raises(V3veeError, match=r"exists \(running at /dev/v3-vm0\).*force: true"):
        run(sim, 'restore', 'a', str(tmp_path / 'a'), 'DIR')


def damage(path, how):
    manifest_path = os.path.join(path, ck.MANIFEST)
    manifest = json.load(open(manifest_path))
    how(path, manifest)
    json.dump(manifest, open(manifest_path, 'w'))


@pytest.mark.parametrize('how, message', [
    (lambda p, m: os.unlink(os.path.join(p, 'devices')), r"incomplete: 'devices' is missing"),
    (lambda p, m: open(os.path.join(p, 'guest_info0'), 'r+b').write(b'\x01'), r"sha256 of 'guest_info0' differs"),
    (lambda p, m: m['files']['header'].update(size=48), r"'header' is 47 bytes, the manifest says 48"),
    (lambda p, m: m['files'].update({'../x': {'size': 1, 'sha256': ''}}), r"'../x', which is not a file name"),
    (lambda p, m: m.update(vm='b'), r"holds a checkpoint of VM 'b', not 'a'"),
    (lambda p, m: m.update(store='KEYED_STREAM'), r"saved with store KEYED_STREAM"),
    (lambda p, m: m.update(memory_bytes=8 << 20), r"holds 8388608 bytes of memory and 1 vcores, its config now makes 4194304"),
    (lambda p, m: m['definition'].update(sha256='0' * 64), r"saved from another config than the one the inventory records"),
    (lambda p, m: m.update(format=2), r"not a checkpoint manifest of format 1"),
])
def test_a_bad_checkpoint_is_refused_before_any_tool_runs(sim, tmp_path, how, message):
    vm(sim, 'a', 'paused')
    path = str(tmp_path / 'a')
    run(sim, 'save', 'a', path, 'DIR')
    vm(sim, 'a', 'inactive')
    damage(path, how)
    before = sim.kernel()
    host = sim.host()
    with pytest.raises(V3veeError, match=message):
        with sim.store().transaction() as store:
            ck.Checkpoints(host, store, sim.settings.inventory_path, in_process_runner).restore('a', path, 'DIR')
    assert host.tools.commands == [] and sim.kernel() == before


def test_a_load_the_kernel_only_logs_as_failed_frees_the_vm_it_made(sim, tmp_path):
    vm(sim, 'a', 'paused')
    path = str(tmp_path / 'a')
    run(sim, 'save', 'a', path, 'DIR')
    vm(sim, 'a', 'inactive')
    damage(path, lambda p, m: m.update(rips=['0x0000000000001234']))   # the load gives another rip
    with pytest.raises(ck.StepError) as err:
        run(sim, 'restore', 'a', path, 'DIR')
    assert err.value.step == 'load' and 'the checkpoint recorded 0x1234' in err.value.msg
    assert 'a' not in sim.kernel()
    record = sim.records()['a']
    assert record['observed_state'] == 'inactive' and record['slot'] is None


def test_a_step_after_the_load_is_verified_too(sim, tmp_path):
    vm(sim, 'a', 'paused')
    path = str(tmp_path / 'a')
    run(sim, 'save', 'a', path, 'DIR')
    vm(sim, 'a', 'inactive')
    sim.tool('v3sim', 'fault', 'add', 'v3_pause', 'refuse')     # exits 0, the VM keeps running
    with pytest.raises(ck.StepError) as err:
        run(sim, 'restore', 'a', path, 'DIR', vm_state='paused')
    assert err.value.step == 'pause' and 'expected paused' in err.value.msg
    assert sim.kernel()['a'][0] == 'running' and sim.records()['a']['observed_state'] == 'running'


def test_restore_without_a_record_uses_the_manifests_config(sim, tmp_path):
    vm(sim, 'a', 'paused')
    path = str(tmp_path / 'a')
    run(sim, 'save', 'a', path, 'DIR')
    vm(sim, 'a', 'inactive')
    store = sim.store()
    with store.transaction():
        store.delete('a')
    os.rename(sim.xml['small'], sim.xml['small'] + '.gone')
    result = run(sim, 'restore', 'a', path, 'DIR', vm_state='running')
    config = result['vm']['config']
    assert os.path.dirname(config) == os.path.join(os.path.dirname(sim.settings.inventory_path), 'configs')
    assert open(config).read() == open(sim.xml['small'] + '.gone').read()
    assert sim.kernel()['a'][0] == 'running' and sim.records()['a']['config'] == config


def test_absent_removes_only_a_checkpoint(sim, tmp_path):
    vm(sim, 'a', 'running')
    path = str(tmp_path / 'a')
    run(sim, 'save', 'a', path, 'DIR')
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    with pytest.raises(V3veeError, match='holds no readable checkpoint manifest'):
        run(sim, 'remove', 'a', str(foreign))
    predicted = run(sim, 'remove', 'a', path, check_mode=True)
    assert predicted['changed'] and os.path.isdir(path)
    assert run(sim, 'remove', 'a', path)['changed'] and not os.path.exists(path)
    assert sim.store(readonly=True).checkpoints('a') == []
    assert not run(sim, 'remove', 'a', path)['changed'] and foreign.is_dir()


@pytest.mark.parametrize('path, message', [
    ('relative/dir', 'must be an absolute'), ('/', 'cannot hold a checkpoint'),
    ('/' + 'd' * 250, 'too long: Palacios takes checkpoint urls of at most 255 bytes'),
])
def test_check_path_refuses_what_the_tools_cannot_take(path, message):
    with pytest.raises(V3veeError, match=message):
        ck.check_path(path, 'DIR')


def test_saved_problems_name_what_real_palacios_writes(tmp_path):
    missing = str(tmp_path / 'none')
    assert ck.saved_problems(missing, 'DIR', 4096, 1) == ['v3_save wrote nothing (%s does not exist)' % missing]
    (tmp_path / 'header').write_bytes(b'x' * 47)
    (tmp_path / 'memory_img').write_bytes(b'\0' * 4107)
    (tmp_path / 'guest_info0').write_bytes(b'r')
    (tmp_path / 'devices').write_bytes(b'd')
    problems = ck.saved_problems(str(tmp_path), 'DIR', 4096, 2)
    assert problems == ['memory_img is 4107 bytes (the VM has 4096 bytes of memory: 4108 expected)',
                        'guest_info1 (the state of vcore 1) is missing or empty']
    assert ck.saved_problems(str(tmp_path), 'KEYED_STREAM', 4096, 1) == []


def test_schema_1_inventory_gains_the_checkpoints_table_and_keeps_its_records(tmp_path):
    path = str(tmp_path / 'inventory.db')
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    record = new_record('a', dict(DEF, config='/x.xml'), desired_state='running')
    conn.execute('INSERT INTO vms (name, config, config_options, observed_state, desired_state, created_at, updated_at) '
                 "VALUES ('a', '/x.xml', '{}', 'inactive', 'running', ?, ?)", (record['created_at'], record['updated_at']))
    conn.commit()
    conn.close()
    with pytest.raises(V3veeError, match='old schema'):
        InventoryStore(path, readonly=True).open()
    store = InventoryStore(path)
    with store.transaction():
        assert store.get('a')['desired_state'] == 'running' and store.checkpoints() == []
        store.put_checkpoint({'path': '/c', 'vm': 'a', 'store': 'DIR', 'url': '/c', 'saved_at': 'T', 'vm_state': 'paused',
                              'definition': {'config': '/x.xml'}, 'memory_bytes': 4, 'cores': 1, 'recover': True})
    assert InventoryStore(path, readonly=True).checkpoints('a')[0]['recover'] is True
    assert ck.latest_recover_request(InventoryStore(path, readonly=True).checkpoints('a'))['path'] == '/c'


def test_pause_for_a_save_is_recorded_and_the_desired_state_kept(sim, tmp_path):
    vm(sim, 'a', 'running')
    result = run(sim, 'save', 'a', str(tmp_path / 'a'), 'DIR', pause=True, recover=True)
    assert result['steps'] == ['pause', 'save'] and result['vm']['state'] == 'paused'
    record = sim.records()['a']
    assert (record['observed_state'], record['desired_state']) == ('paused', 'running')
    assert sim.store(readonly=True).checkpoints('a')[0]['recover'] is True
