import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import Host

INFO = ('kernel MAX_ORDER:\t11\nnumber of nodes:\t1\nnumber of cpus: \t4\n\n'
        'palacios compiled mem_block_size:\t134217728\npalacios run-time mem_block_size:\t134217728\n')


def no_tools(argv, cwd=None, env_update=None):
    raise AssertionError('no tool may run: %r' % (argv,))


def host_with_guests(tmp_path, guests):
    proc = tmp_path / 'proc'
    proc.mkdir()
    (proc / 'v3-info').write_text(INFO)
    (proc / 'v3-guests').write_text(guests)
    settings = Settings(proc_dir=str(proc), dev_dir=str(tmp_path), inventory_path=str(tmp_path / 'i.db'),
                        tools_dir=str(tmp_path))
    return Host(settings, no_tools, timeout=0), InventoryStore(settings.inventory_path)


def test_old_two_field_format_is_refused_instead_of_creating_a_second_vm(tmp_path):
    host, store = host_with_guests(tmp_path, 'web1\t/dev/v3-vm0\n')
    definition = {'image': None, 'config': '/x.xml', 'config_options': {}}
    with pytest.raises(V3veeError, match='2-field format'):
        with store.transaction():
            host.converge(store, 'web1', 'running', definition=definition)


def test_present_of_a_recorded_vm_reads_proc_and_runs_nothing(tmp_path):
    host, store = host_with_guests(tmp_path, 'web1\t/dev/v3-vm0\trunning\t1 vcores\t1 regions\t134217728 mem\tgeneral\n')
    definition = {'image': None, 'config': '/x.xml', 'config_options': {}}
    with store.transaction():
        result = host.converge(store, 'web1', 'present', definition=definition)
    assert result['changed'] and result['steps'] == []
    assert result['vm']['state'] == 'running' and result['vm']['slot'] == 0
    assert store.get('web1')['desired_state'] == 'running'
