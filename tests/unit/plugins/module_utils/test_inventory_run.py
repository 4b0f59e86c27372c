"""A whole v3vee_inventory run over a fake /proc/v3vee: operation order, check mode = real run,
export format. Tool runs are not possible here (recover is covered by the integration targets)."""
import os

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import guifile
from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore, new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory_run import InventoryRun, export_lines
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import VmEntry
from ansible_collections.v3vee.palacios.plugins.module_utils.reconcile import classify
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import Host

INFO = ('kernel MAX_ORDER:\t11\nnumber of nodes:\t1\nnumber of cpus: \t4\n\n'
        'palacios compiled mem_block_size:\t134217728\npalacios run-time mem_block_size:\t134217728\n')
XML = {'image': None, 'config': '/srv/web.xml', 'config_options': {}}
IMG = {'image': '/srv/db.img', 'config': None, 'config_options': {}}


def guest_line(slot, name, state):
    return '%s\t/dev/v3-vm%d\t%s\t1 vcores\t1 regions\t134217728 mem\tgeneral\n' % (name, slot, state)


def no_tools(argv, cwd=None, env_update=None):
    raise AssertionError('no tool may run: %r' % (argv,))


class Session(object):
    def __init__(self, tmp_path, check_mode):
        self.settings = Settings(proc_dir=str(tmp_path / 'proc'), dev_dir=str(tmp_path / 'dev'),
                                 inventory_path=str(tmp_path / 'lib' / 'inventory.db'))
        self.host = Host(self.settings, no_tools, check_mode=check_mode, timeout=0)


@pytest.fixture
def host(tmp_path):
    (tmp_path / 'proc').mkdir()
    (tmp_path / 'proc' / 'v3-info').write_text(INFO)

    def kernel(*vms):
        (tmp_path / 'proc' / 'v3-guests').write_text(''.join(guest_line(*v) for v in vms))
    kernel()
    return kernel


def params(**kw):
    out = dict(gui_import=None, vms=[], adopt=[], reconcile=False, recover=False, gui_export=None,
               import_conflict='keep', force=False)
    out.update(kw)
    return out


def run(tmp_path, check_mode, **kw):
    session = Session(tmp_path, check_mode)
    store = InventoryStore(session.settings.inventory_path, readonly=check_mode)
    with store.transaction():
        result = InventoryRun(session, store, params(**kw)).run()
    return result, session.host.warnings


def seed(tmp_path, *records):
    store = InventoryStore(str(tmp_path / 'lib' / 'inventory.db'))
    with store.transaction():
        for record in records:
            store.put(record)


def four_times(tmp_path, **kw):
    """check -> real -> check -> real, as the integration targets do."""
    return [run(tmp_path, check, **kw)[0] for check in (True, False, True, False)]


def test_records_adopt_and_reconcile_check_mode_predicts_the_real_run(tmp_path, host):
    host((0, 'cli', 'running'), (1, 'web1', 'paused'))
    seed(tmp_path, new_record('old', XML, 5, '/dev/v3-vm5', 'running', 'running'))
    runs = four_times(tmp_path, vms=[{'name': 'web1', 'state': 'present', 'definition': XML},
                                     {'name': 'db', 'state': 'present', 'definition': IMG}],
                      adopt=[{'name': 'cli', 'definition': IMG}], reconcile=True)
    assert [r['changed'] for r in runs] == [True, True, False, False]

    def strip(records):
        return [dict((k, v) for k, v in r.items() if k not in ('created_at', 'updated_at')) for r in records]
    assert strip(runs[0]['records']) == strip(runs[1]['records'])
    assert runs[0]['summary'] == runs[1]['summary'] == {
        'active_inventory': {'count': 2, 'names': ['cli', 'web1']},
        'inactive_inventory': {'count': 2, 'names': ['db', 'old']},
        'not_in_inventory': {'count': 0, 'names': []}}
    assert runs[1]['drift'] == {'old': ['slot_gone', 'state_changed', 'not_desired_state']}
    assert runs[1]['vms'] == [{'name': 'web1', 'action': 'created', 'drift': []},
                              {'name': 'db', 'action': 'created', 'drift': []}]
    assert runs[3]['vms'][0]['action'] == 'unchanged'


def test_check_mode_writes_nothing(tmp_path, host):
    result = run(tmp_path, True, vms=[{'name': 'web1', 'state': 'present', 'definition': XML}],
                 gui_export=str(tmp_path / guifile.FILE_NAME))[0]
    assert result['changed'] and result['gui_export']['changed']
    assert not os.path.exists(str(tmp_path / 'lib')) and not os.path.exists(str(tmp_path / guifile.FILE_NAME))


def test_diff_shows_records_and_file_before_and_after(tmp_path, host):
    result = run(tmp_path, True, vms=[{'name': 'web1', 'state': 'present', 'definition': XML}],
                 gui_export=str(tmp_path / guifile.FILE_NAME))[0]
    records, gui = result['diff']
    assert records['before'] == {} and records['after']['web1']['config'] == '/srv/web.xml'
    assert gui['before'] == '' and gui['after'] == 'web1,/srv/web.xml,,0,\n'


def test_an_error_in_the_record_operations_writes_nothing(tmp_path, host):
    host((0, 'web1', 'running'))
    seed(tmp_path, new_record('web1', XML, 0, '/dev/v3-vm0', 'running', 'running'))
    with pytest.raises(V3veeError, match='force'):
        run(tmp_path, False, vms=[{'name': 'new', 'state': 'present', 'definition': XML},
                                  {'name': 'web1', 'state': 'absent', 'definition': None}])
    assert [r['name'] for r in InventoryStore(str(tmp_path / 'lib' / 'inventory.db')).all()] == ['web1']


def test_import_runs_before_records_and_export_runs_last(tmp_path, host):
    gui = tmp_path / guifile.FILE_NAME
    gui.write_bytes(b'web1,/srv/web.xml,,0,web1.img\n\nbroken\n')
    result, warnings = run(tmp_path, False, gui_import=str(gui), gui_export=str(gui),
                           vms=[{'name': 'web1', 'state': 'absent', 'definition': None}])
    assert result['gui_import']['imported'] == ['web1'] and result['vms'][0]['action'] == 'removed'
    assert [b['line'] for b in result['gui_import']['bad_lines']] == [2, 3]
    assert any('line 2' in w for w in warnings) and any('line 3' in w for w in warnings)
    assert gui.read_bytes() == b''  # exported after web1 was removed again; bad lines are not kept


def test_export_then_import_round_trip_changes_nothing(tmp_path, host):
    host((0, 'web1', 'running'))
    seed(tmp_path, new_record('web1', XML, 0, '/dev/v3-vm0', 'running', 'running'),
         new_record('db', IMG, desired_state='stopped'), new_record('new', XML))
    gui = str(tmp_path / guifile.FILE_NAME)
    assert run(tmp_path, False, gui_export=gui)[0]['changed']
    assert open(gui, 'rb').read() == b'db,,,0,/srv/db.img\nnew,/srv/web.xml,,0,\nweb1,/srv/web.xml,/dev/v3-vm0,2,\n'
    result, warnings = run(tmp_path, False, gui_import=gui, gui_export=gui)
    assert not result['changed'] and warnings == []
    assert result['gui_import']['unchanged'] == ['db', 'new', 'web1']


def export(records, guests):
    return export_lines(classify(records, guests))


def test_export_takes_dev_and_state_from_the_kernel_not_the_record():
    # The record still says running at slot 0; the kernel has it paused at slot 2 (gotcha 19).
    lines = export([new_record('web1', XML, 0, '/dev/v3-vm0', 'running', 'running')],
                   [VmEntry(2, 'web1', '/dev/v3-vm2', 'paused', 1, 1, 134217728, 'general')])[0]
    assert guifile.render(lines) == b'web1,/srv/web.xml,/dev/v3-vm2,1,\n'


def test_export_of_an_error_vm_is_stopped():
    lines = export([new_record('web1', XML, 0, '/dev/v3-vm0', 'ERROR', 'running')],
                   [VmEntry(0, 'web1', '/dev/v3-vm0', 'ERROR', 1, 1, 134217728, 'general')])[0]
    assert lines[0].state == '0'


def test_export_of_an_inactive_vm_has_no_dev_and_its_desired_state():
    lines = export([new_record('web1', IMG, 3, '/dev/v3-vm3', 'running', 'running')], [])[0]
    assert guifile.render(lines) == b'web1,,,2,/srv/db.img\n'


def test_export_skips_paths_the_format_cannot_carry():
    lines, skipped = export([new_record('a', {'image': '/srv/a,b.img', 'config': None}), new_record('b', XML)], [])
    assert [line.name for line in lines] == ['b']
    assert skipped[0]['name'] == 'a' and 'comma' in skipped[0]['reason']


def test_kernel_vms_without_record_are_not_exported():
    lines = export([], [VmEntry(0, 'cli', '/dev/v3-vm0', 'running', 1, 1, 134217728, 'general')])[0]
    assert lines == []


def test_sync_with_a_gui_file_that_does_not_exist_yet_creates_it(tmp_path, host):
    seed(tmp_path, new_record('db', IMG, desired_state='stopped'))
    gui = str(tmp_path / guifile.FILE_NAME)
    result = run(tmp_path, False, gui_import=gui, gui_export=gui)[0]
    assert result['changed'] and result['gui_import']['not_in_file'] == ['db']
    assert open(gui, 'rb').read() == b'db,,,0,/srv/db.img\n'


def test_import_of_a_missing_file_fails(tmp_path, host):
    with pytest.raises(V3veeError, match='does not exist'):
        run(tmp_path, False, gui_import=str(tmp_path / 'nope.txt'))
