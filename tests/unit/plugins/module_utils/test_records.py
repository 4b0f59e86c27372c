import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils import records as rec
from ansible_collections.v3vee.palacios.plugins.module_utils.guifile import GuiLine
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore, new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import VmEntry
from ansible_collections.v3vee.palacios.plugins.module_utils.reconcile import (
    DUPLICATE_NAMES, RELINKED, SLOT_GONE, SLOT_REUSED)

XML = {'image': None, 'config': '/srv/web.xml', 'config_options': {}}
IMG = {'image': '/srv/web.img', 'config': None, 'config_options': {}}


def vm(slot, name, state='running'):
    return VmEntry(slot, name, '/dev/v3-vm%d' % slot, state, 1, 1, 134217728, 'general')


class Memory(object):
    """An in-memory stand-in for InventoryStore (what StagedStore wraps)."""

    def __init__(self, *records):
        self.rows = dict((r['name'], r) for r in records)

    def all(self):
        return [self.rows[n] for n in sorted(self.rows)]

    def put(self, record):
        self.rows[record['name']] = record

    def delete(self, name):
        self.rows.pop(name, None)


def staged(*records):
    return rec.StagedStore(Memory(*records))


def active(name, slot, state='running', desired='running', definition=None):
    return new_record(name, definition or XML, slot, '/dev/v3-vm%d' % slot, state, desired)


def inactive(name, desired='inactive', definition=None, slot=None):
    record = new_record(name, definition or XML, desired_state=desired)
    if slot is not None:  # a stale link, as after a reboot
        record.update(slot=slot, device='/dev/v3-vm%d' % slot, observed_state=desired)
    return record


def item(name, definition=None, state='present'):
    return {'name': name, 'definition': definition, 'state': state}


# -- StagedStore -------------------------------------------------------------------------------

def test_staged_store_writes_only_the_difference_on_flush(tmp_path):
    store = InventoryStore(str(tmp_path / 'i.db'))
    with store.transaction():
        store.put(inactive('keep'))
        store.put(inactive('drop'))
        store.put(inactive('change'))
    with store.transaction():
        stage = rec.StagedStore(store)
        stage.delete('drop')
        stage.put(inactive('change', desired='stopped'))
        stage.put(inactive('new'))
        assert store.get('new') is None  # nothing written before flush
        assert stage.changed()
        stage.flush()
    assert [r['name'] for r in store.all()] == ['change', 'keep', 'new']
    assert store.get('change')['desired_state'] == 'stopped'
    assert not stage.changed()


def test_staged_store_hands_out_copies():
    stage = staged(inactive('a'))
    stage.get('a')['desired_state'] = 'running'
    assert stage.get('a')['desired_state'] == 'inactive' and not stage.changed()


# -- vms (records only) ------------------------------------------------------------------------

def test_new_record_not_in_the_kernel_is_inactive():
    stage = staged()
    out = rec.plan_records([item('web1', XML)], stage, [])
    assert out == [{'name': 'web1', 'action': 'created', 'drift': []}]
    record = stage.get('web1')
    assert record['desired_state'] == 'inactive' and record['slot'] is None and record['config'] == '/srv/web.xml'


def test_new_record_of_a_vm_in_the_kernel_is_linked_with_its_state():
    stage = staged()
    rec.plan_records([item('web1', XML)], stage, [vm(3, 'web1', 'paused')])
    record = stage.get('web1')
    assert (record['slot'], record['device'], record['observed_state'], record['desired_state']) == \
        (3, '/dev/v3-vm3', 'paused', 'paused')


def test_new_record_of_an_error_vm_wants_it_stopped():
    stage = staged()
    rec.plan_records([item('web1', XML)], stage, [vm(0, 'web1', 'ERROR')])
    assert stage.get('web1')['desired_state'] == 'stopped'


def test_new_record_with_duplicate_kernel_names_is_not_linked_to_a_guess():
    stage = staged()
    out = rec.plan_records([item('web1', XML)], stage, [vm(0, 'web1'), vm(1, 'web1')])
    assert stage.get('web1')['slot'] is None
    assert DUPLICATE_NAMES in out[0]['drift']


def test_existing_record_without_definition_is_unchanged():
    stage = staged(inactive('web1', desired='running'))
    assert rec.plan_records([item('web1')], stage, [])[0]['action'] == 'unchanged'
    assert not stage.changed()


def test_same_definition_is_unchanged_and_keeps_desired_state():
    stage = staged(active('web1', 0))
    assert rec.plan_records([item('web1', XML)], stage, [vm(0, 'web1')])[0]['action'] == 'unchanged'


def test_inactive_record_gets_a_new_definition_and_keeps_its_desired_state():
    stage = staged(inactive('web1', desired='running'))
    assert rec.plan_records([item('web1', IMG)], stage, [])[0]['action'] == 'updated'
    record = stage.get('web1')
    assert record['image'] == '/srv/web.img' and record['config'] is None and record['desired_state'] == 'running'


def test_active_vm_definition_cannot_change_in_the_inventory_alone():
    stage = staged(active('web1', 0))
    with pytest.raises(V3veeError, match='recreate'):
        rec.plan_records([item('web1', IMG)], stage, [vm(0, 'web1')])


def test_unknown_name_without_definition_is_an_error():
    with pytest.raises(V3veeError, match='give image, config or config_xml'):
        rec.plan_records([item('web1')], staged(), [])


def test_removing_an_inactive_record():
    stage = staged(inactive('web1'))
    assert rec.plan_records([item('web1', state='absent')], stage, [])[0]['action'] == 'removed'
    assert stage.get('web1') is None


def test_removing_an_absent_record_is_unchanged():
    assert rec.plan_records([item('web1', state='absent')], staged(), [])[0]['action'] == 'unchanged'


def test_removing_an_active_vms_record_needs_force():
    stage = staged(active('web1', 0))
    with pytest.raises(V3veeError, match='not in inventory'):
        rec.plan_records([item('web1', state='absent')], stage, [vm(0, 'web1')])
    assert rec.plan_records([item('web1', state='absent')], stage, [vm(0, 'web1')], force=True)[0]['action'] == 'removed'


def test_removing_a_record_whose_slot_holds_another_vm_needs_no_force():
    stage = staged(active('web1', 0))
    assert rec.plan_records([item('web1', state='absent')], stage, [vm(0, 'other')])[0]['action'] == 'removed'


# -- adopt -------------------------------------------------------------------------------------

def test_adopt_links_the_one_kernel_vm_with_that_name():
    stage = staged()
    out = rec.plan_adopt([item('cli', IMG)], stage, [vm(2, 'cli', 'running')])
    assert out == [{'name': 'cli', 'devices': ['/dev/v3-vm2'], 'result': 'adopted'}]
    record = stage.get('cli')
    assert (record['slot'], record['image'], record['desired_state']) == (2, '/srv/web.img', 'running')


def test_adopt_reports_duplicates_missing_and_known_names_without_changing_anything():
    stage = staged(active('known', 0))
    guests = [vm(0, 'known'), vm(1, 'twin'), vm(2, 'twin')]
    out = rec.plan_adopt([item('twin', IMG), item('ghost', IMG), item('known', IMG)], stage, guests)
    assert [(o['name'], o['result']) for o in out] == [
        ('twin', 'duplicate_names'), ('ghost', 'not_in_kernel'), ('known', 'in_inventory')]
    assert out[0]['devices'] == ['/dev/v3-vm1', '/dev/v3-vm2']
    assert not stage.changed()


# -- reconcile ---------------------------------------------------------------------------------

def test_reconcile_makes_a_record_whose_slot_is_gone_inactive_and_keeps_its_desire():
    stage = staged(active('web1', 0))
    out = rec.plan_reconcile(stage, [])
    assert out[0]['changed'] and SLOT_GONE in out[0]['drift'] and out[0]['category'] == 'inactive_inventory'
    record = stage.get('web1')
    assert (record['slot'], record['device'], record['observed_state'], record['desired_state']) == \
        (None, None, 'inactive', 'running')


def test_reconcile_makes_a_record_whose_slot_holds_another_vm_inactive():
    stage = staged(active('web1', 0))
    out = rec.plan_reconcile(stage, [vm(0, 'intruder')])
    assert SLOT_REUSED in out[0]['drift'] and stage.get('web1')['slot'] is None


def test_reconcile_relinks_a_vm_found_under_its_name_elsewhere():
    stage = staged(active('web1', 0))
    out = rec.plan_reconcile(stage, [vm(4, 'web1', 'paused')])
    assert RELINKED in out[0]['drift']
    record = stage.get('web1')
    assert (record['slot'], record['observed_state'], record['desired_state']) == (4, 'paused', 'running')


def test_reconcile_does_not_guess_among_duplicates():
    stage = staged(active('web1', 0))
    out = rec.plan_reconcile(stage, [vm(1, 'web1'), vm(2, 'web1')])
    assert DUPLICATE_NAMES in out[0]['drift'] and stage.get('web1')['slot'] is None


def test_reconcile_updates_a_stale_kernel_state():
    stage = staged(active('web1', 0, state='running'))
    rec.plan_reconcile(stage, [vm(0, 'web1', 'paused')])
    assert stage.get('web1')['observed_state'] == 'paused'


def test_reconcile_of_true_records_changes_nothing():
    stage = staged(active('web1', 0), inactive('web2'))
    out = rec.plan_reconcile(stage, [vm(0, 'web1'), vm(1, 'cli')])
    assert [o['changed'] for o in out] == [False, False] and not stage.changed()
    assert [o['name'] for o in out] == ['web1', 'web2']  # kernel VMs without record are not records


# -- import ------------------------------------------------------------------------------------

def line(name, config='/srv/web.xml', dev='', state='0', image='', number=1):
    return GuiLine(number, name, config, dev, state, image)


def test_import_adds_new_names_with_the_lines_state():
    stage = staged()
    report = rec.plan_import([line('new', number=1), line('run', dev='/dev/v3-vm7', state='2', number=2),
                              line('stop', dev='/dev/v3-vm8', number=3)], stage, [], '/gui')
    assert report['imported'] == ['new', 'run', 'stop'] and report['conflicts'] == []
    assert [stage.get(n)['desired_state'] for n in ('new', 'run', 'stop')] == ['inactive', 'running', 'stopped']
    assert stage.get('run')['slot'] is None  # /dev/v3-vm7 is not in the kernel: a stale dev is not believed


def test_import_links_a_line_to_the_kernel_vm_it_names():
    stage = staged()
    rec.plan_import([line('web1', dev='/dev/v3-vm0', state='2')], stage, [vm(0, 'web1')], '/gui')
    assert stage.get('web1')['slot'] == 0 and stage.get('web1')['observed_state'] == 'running'


def test_import_resolves_relative_paths_against_the_files_directory():
    stage = staged()
    rec.plan_import([line('web1', config='cfg/web1.xml', image='web1.img')], stage, [], '/home/gui')
    assert stage.get('web1')['image'] == '/home/gui/web1.img'
    assert stage.get('web1')['config'] == '/home/gui/cfg/web1.xml'


def test_import_of_matching_lines_is_unchanged():
    stage = staged(active('web1', 0), inactive('web2', desired='stopped'))
    report = rec.plan_import([line('web1', dev='/dev/v3-vm0', state='2', number=1), line('web2', number=2)],
                             stage, [vm(0, 'web1')], '/gui')
    # web2: an inactive "stopped" and a GUI line "no dev, 0" are the same thing in the file.
    assert report['unchanged'] == ['web1', 'web2'] and not stage.changed()


def test_import_keeps_the_record_on_conflict_by_default_and_reports_it():
    stage = staged(active('web1', 0, state='paused', desired='paused'))
    report = rec.plan_import([line('web1', config='/srv/other.xml', dev='/dev/v3-vm0', state='2', number=4)],
                             stage, [vm(0, 'web1', 'paused')], '/gui')
    assert not stage.changed()
    conflict = report['conflicts'][0]
    assert conflict['line'] == 4 and conflict['resolution'] == 'kept'
    assert conflict['differences'] == {
        'config': {'inventory': '/srv/web.xml', 'file': '/srv/other.xml'},
        'desired_state': {'inventory': 'paused', 'file': 'running'}}


def test_import_replace_lets_the_line_win_for_an_inactive_vm():
    old = inactive('web1', desired='running', definition={'image': None, 'config': '/srv/web.xml',
                                                          'config_options': {'mem': '512'}})
    stage = staged(old)
    report = rec.plan_import([line('web1', config='/srv/new.xml', image='/srv/new.img', state='1')], stage, [],
                             '/gui', policy='replace')
    assert report['replaced'] == ['web1'] and report['conflicts'][0]['resolution'] == 'replaced'
    record = stage.get('web1')
    assert (record['config'], record['image'], record['desired_state']) == ('/srv/new.xml', '/srv/new.img', 'paused')
    assert record['config_options'] == {}  # the overrides were for the old XML


def test_import_replace_keeps_config_options_when_the_config_is_the_same():
    stage = staged(inactive('web1', desired='stopped', definition={'image': None, 'config': '/srv/web.xml',
                                                                   'config_options': {'mem': '512'}}))
    rec.plan_import([line('web1', state='2')], stage, [], '/gui', policy='replace')
    assert stage.get('web1')['config_options'] == {'mem': '512'} and stage.get('web1')['desired_state'] == 'running'


def test_import_replace_never_changes_an_active_vms_definition_only_its_state():
    stage = staged(active('web1', 0))
    report = rec.plan_import([line('web1', config='/srv/other.xml', dev='/dev/v3-vm0', state='1')], stage,
                             [vm(0, 'web1')], '/gui', policy='replace')
    conflict = report['conflicts'][0]
    assert conflict['resolution'] == 'state_replaced' and 'active' in conflict['reason']
    assert stage.get('web1')['config'] == '/srv/web.xml' and stage.get('web1')['desired_state'] == 'paused'


def test_import_replace_of_an_active_vms_definition_alone_is_kept():
    stage = staged(active('web1', 0))
    report = rec.plan_import([line('web1', config='/srv/other.xml', dev='/dev/v3-vm0', state='2')], stage,
                             [vm(0, 'web1')], '/gui', policy='replace')
    assert report['conflicts'][0]['resolution'] == 'kept' and not stage.changed()


def test_import_fail_policy_fails_listing_every_conflict():
    stage = staged(inactive('a', desired='running'), inactive('b', desired='running'))
    with pytest.raises(V3veeError) as err:
        rec.plan_import([line('a', number=3), line('b', number=5), line('c', number=6)], stage, [], '/gui',
                        policy='fail')
    assert 'a (line 3: desired_state)' in err.value.msg and 'b (line 5' in err.value.msg


def test_import_lists_records_the_file_does_not_have_and_keeps_them():
    stage = staged(inactive('only-here'))
    report = rec.plan_import([line('web1')], stage, [], '/gui')
    assert report['not_in_file'] == ['only-here'] and stage.get('only-here') is not None
