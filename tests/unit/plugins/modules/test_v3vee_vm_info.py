import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore, new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.lock import HostLock
from ansible_collections.v3vee.palacios.plugins.modules import v3vee_vm_info

INFO = ('kernel MAX_ORDER:\t11\nnumber of nodes:\t1\nnumber of cpus: \t2\n\n'
        'palacios compiled mem_block_size:\t134217728\npalacios run-time mem_block_size:\t134217728\n')
GUESTS = ('web1\t/dev/v3-vm0\tpaused\t1 vcores\t1 regions\t134217728 mem\tgeneral\n'
          'cli\t/dev/v3-vm1\tstopped\t2 vcores\t2 regions\t268435456 mem\tgeneral\n'
          'twin\t/dev/v3-vm2\tstopped\t1 vcores\t1 regions\t134217728 mem\tgeneral\n'
          'twin\t/dev/v3-vm3\trunning\t1 vcores\t1 regions\t134217728 mem\tgeneral\n')


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A loaded host: web1 recorded and paused although it should run, cli made on the command line,
    two kernel VMs named twin, and db recorded but not in the kernel."""
    proc = tmp_path / 'proc'
    proc.mkdir()
    (proc / 'v3-info').write_text(INFO)
    (proc / 'v3-guests').write_text(GUESTS)
    inventory = str(tmp_path / 'lib' / 'inv.db')
    store = InventoryStore(inventory)
    with store.transaction():
        store.put(new_record('web1', {'config': '/srv/web1.xml', 'config_options': {'mem': '128'}}, 0, '/dev/v3-vm0',
                             'running', 'running'))
        store.put(new_record('db', {'image': '/srv/db.img'}, desired_state='stopped'))
    store.close()
    conf = tmp_path / 'host.conf'
    conf.write_text('V3VEE_PROC_DIR=%s\nV3VEE_DEV_DIR=%s\nV3VEE_INVENTORY_PATH=%s\n' % (proc, tmp_path, inventory))
    monkeypatch.setenv('V3VEE_HOST_CONF', str(conf))
    for name in ('V3VEE_PROC_DIR', 'V3VEE_DEV_DIR', 'V3VEE_INVENTORY_PATH', 'V3VEE_TOOLS_DIR'):
        monkeypatch.delenv(name, raising=False)
    return tmp_path, inventory


def run(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            v3vee_vm_info.main()
    return json.loads(capsys.readouterr().out)


def test_one_vm_with_its_definition_desired_state_and_drift(host, capsys):
    out = run(capsys, name='web1')
    assert out['changed'] is False and 'ansible_facts' not in out and out['module_loaded'] is True
    (vm,) = out['vms']
    assert (vm['state'], vm['slot'], vm['device'], vm['mem_mb'], vm['vcores']) == ('paused', 0, '/dev/v3-vm0', 128, 1)
    assert (vm['config'], vm['config_options'], vm['config_inline']) == ('/srv/web1.xml', {'mem': '128'}, False)
    assert vm['desired_state'] == 'running' and vm['category'] == 'active_inventory'
    assert vm['drift'] == ['state_changed', 'not_desired_state']


def test_all_vms_in_the_guis_order_and_duplicates_listed_each(host, capsys):
    out = run(capsys)
    assert [(vm['name'], vm['category'], vm['slot']) for vm in out['vms']] == [
        ('web1', 'active_inventory', 0), ('db', 'inactive_inventory', None),
        ('cli', 'not_in_inventory', 1), ('twin', 'not_in_inventory', 2), ('twin', 'not_in_inventory', 3)]
    assert [vm['slot'] for vm in run(capsys, name='twin')['vms']] == [2, 3]
    assert run(capsys, name='nobody')['vms'] == []


def test_reads_in_check_mode_and_creates_nothing(tmp_path, monkeypatch, capsys):
    conf = tmp_path / 'host.conf'
    inventory = tmp_path / 'lib' / 'inv.db'
    conf.write_text('V3VEE_PROC_DIR=%s\nV3VEE_INVENTORY_PATH=%s\n' % (tmp_path / 'proc', inventory))
    monkeypatch.setenv('V3VEE_HOST_CONF', str(conf))
    monkeypatch.delenv('V3VEE_INVENTORY_PATH', raising=False)
    monkeypatch.delenv('V3VEE_PROC_DIR', raising=False)
    out = run(capsys, _ansible_check_mode=True)
    assert out['module_loaded'] is False and out['vms'] == [] and out['inventory']['exists'] is False
    assert sorted(os.listdir(str(tmp_path))) == ['host.conf']


def test_inline_configs_are_marked(host, capsys):
    tmp_path, inventory = host
    managed = os.path.join(os.path.dirname(inventory), 'configs', 'db-0123456789abcdef.xml')
    store = InventoryStore(inventory)
    with store.transaction():
        store.put(new_record('db', {'config': managed}, desired_state='stopped'))
    store.close()
    (vm,) = run(capsys, name='db')['vms']
    assert vm['config'] == managed and vm['config_inline'] is True


def test_waits_for_a_run_that_changes_the_host(host, capsys):
    tmp_path, inventory = host
    with HostLock(inventory + '.lock', 1):
        out = run(capsys, lock_timeout=0)
    assert out['failed'] is True and 'holds the host lock' in out['msg']
    with HostLock(inventory + '.lock', 1, shared=True):
        assert run(capsys, lock_timeout=0)['vms']  # readers do not wait for readers
