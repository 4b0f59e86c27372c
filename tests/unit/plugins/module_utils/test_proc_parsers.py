import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils import proc

# Verbatim from real Palacios (interface spec, "Observed on real Palacios" 5 and 7, section 2).
GUESTS_ONE = 'vm1\t/dev/v3-vm0\tstopped\t1 vcores\t1 regions\t134217728 mem\tgeneral\n'
GUESTS_TWO = ('web1\t/dev/v3-vm0\trunning\t2 vcores\t4 regions\t536870912 mem\tgeneral\n'
              'db\t/dev/v3-vm1\tstopped\t1 vcores\t2 regions\t268435456 mem\tgeneral\n')
INFO = ('kernel MAX_ORDER:\t11\nnumber of nodes:\t1\nnumber of cpus: \t4\n\n'
        'palacios compiled mem_block_size:\t134217728\npalacios run-time mem_block_size:\t134217728\n\n'
        'CPU to node mappings\ncpu 0 -> node 0\ncpu 1 -> node 0\ncpu 2 -> node 0\ncpu 3 -> node 0\n\n'
        'Node to node distances\n   \t 0\n 0 \t10\n\nCPU to CPU distances\n   \t 0   \t 1   \t 2   \t 3\n'
        ' 0 \t10\t10\t10\t10\n 1 \t10\t10\t10\t10\n 2 \t10\t10\t10\t10\n 3 \t10\t10\t10\t10\n')
MEM_AFTER_INSMOD = ('DUMP OF BUDDY MEMORY ZONE:\n  Zone Max Order=27, Min Order=12\n'
                    '  order 12: 0 free blocks\n  order 22: 0 free blocks\n 1 memory pools\n'
                    '    Base Addr=000000007f400000, order=22, size=4194304, free=4161536\n')
MEM_THREE_POOLS = MEM_AFTER_INSMOD.replace(
    ' 1 memory pools\n', ' 3 memory pools\n') + (
    '    Base Addr=0000000008000000, order=27, size=134217728, free=0\n'
    '    Base Addr=0000000010000000, order=27, size=134217728, free=134217728\n')
DETAILS = ('-' * 87 + '\nEntry:        0\nName:         vm1\nDevice:       /dev/v3-vm0\nType:         general\n'
           'State:        running\nCores:        1 (1 shown)\nRegions:      1 (1 shown)\n'
           'Memsize:      134217728 (134217728 ROS)\n\nCore States\n'
           '   vcore 0 running on pcore 0 15748 exits rip=0x000000000000fff0 real physical shadow \n\n'
           'Memory Regions\n   region 0 has HPAs 0x0000000008000000-0x0000000010000000 (node 0) '
           'GPA 0x0000000000000000  \n' + '-' * 87 + '\n')


def test_parses_observed_seven_field_line():
    (entry,) = proc.parse_guests(GUESTS_ONE)
    assert entry == proc.VmEntry(0, 'vm1', '/dev/v3-vm0', 'stopped', 1, 1, 134217728, 'general')


def test_empty_file_means_no_vms():
    assert proc.parse_guests('') == []


def test_parses_two_vms_in_slot_order():
    first, second = GUESTS_TWO.splitlines()
    entries = proc.parse_guests(second + '\n' + first + '\n')
    assert [(e.index, e.name, e.state, e.vcores, e.mem_bytes) for e in entries] == [
        (0, 'web1', 'running', 2, 536870912), (1, 'db', 'stopped', 1, 268435456)]


def test_accepts_the_old_two_field_format_the_gui_was_written_for():
    entries = proc.parse_guests('web1\t/dev/v3-vm0\nweb 2\t/dev/v3-vm3\n')
    assert [(e.index, e.name, e.state) for e in entries] == [(0, 'web1', None), (3, 'web 2', None)]


def test_accepts_the_unable_to_get_data_variant():
    (entry,) = proc.parse_guests('x\t/dev/v3-vm5\t<unable to get data for this VM>\n')
    assert (entry.index, entry.name, entry.state) == (5, 'x', 'UNAVAILABLE')


def test_name_with_tab_keeps_the_fixed_fields_on_the_right():
    (entry,) = proc.parse_guests('a\tb\t/dev/v3-vm2\tpaused\t1 vcores\t1 regions\t134217728 mem\thvm\n')
    assert (entry.name, entry.index, entry.state, entry.vm_type) == ('a\tb', 2, 'paused', 'hvm')


def test_name_with_spaces_survives():
    (entry,) = proc.parse_guests('my vm\t/dev/v3-vm1\trunning\t1 vcores\t1 regions\t134217728 mem\tgeneral\n')
    assert entry.name == 'my vm'


@pytest.mark.parametrize('line', ['garbage', 'a\tb\tc\td', 'vm\t/dev/sda\trunning\t1 vcores\t1 regions\t1 mem\tx'])
def test_rejects_lines_that_are_not_palacios(line):
    with pytest.raises(V3veeError, match='Cannot parse line 1 of v3-guests'):
        proc.parse_guests(line + '\n')


def test_parses_v3_info_with_the_space_before_tab():
    info = proc.parse_info(INFO)
    assert info['cpus'] == 4 and info['nodes'] == 1 and info['max_order'] == 11
    assert info['compiled_block_size'] == info['runtime_block_size'] == 134217728
    assert info['cpu_to_node'] == {0: 0, 1: 0, 2: 0, 3: 0}


def test_v3_info_without_block_sizes_is_rejected():
    with pytest.raises(V3veeError, match='lacks'):
        proc.parse_info('kernel MAX_ORDER:\t11\n')


def test_parses_seed_pool_after_insmod():
    zone = proc.parse_mem(MEM_AFTER_INSMOD)
    assert (zone['max_order'], zone['min_order']) == (27, 12)
    assert zone['pools'] == [proc.Pool(0x7f400000, 22, 4194304, 4161536)]


def test_free_blocks_counts_whole_blocks_in_every_pool():
    zones = {0: proc.parse_mem(MEM_THREE_POOLS)}
    assert [p.base for p in zones[0]['pools']] == [0x8000000, 0x10000000, 0x7f400000]
    assert proc.free_blocks(zones, 134217728) == 1
    assert proc.free_blocks(zones, 4194304) == 32  # the seed (4161536 free) cannot hold 4 MB
    assert proc.free_blocks(zones, 2097152) == 64 + 1  # ...but can hold one 2 MB block


def test_blocks_needed_rounds_up():
    assert proc.blocks_needed(134217728, 134217728) == 1
    assert proc.blocks_needed(134217729, 134217728) == 2
    assert proc.blocks_needed(256 * 1048576, 4194304) == 64


def test_parses_details_vcore_lines():
    details = proc.parse_guests_details(DETAILS)
    assert details[0]['name'] == 'vm1' and details[0]['state'] == 'running'
    assert details[0]['vcores'] == [{'vcore': 0, 'state': 'running', 'pcore': 0, 'exits': 15748,
                                     'rip': '0x000000000000fff0', 'mode': ['real', 'physical', 'shadow']}]
    assert len(details[0]['regions']) == 1


def test_reader_reports_unloaded_module(tmp_path):
    snap = proc.ProcReader(str(tmp_path / 'missing')).snapshot(memory=True)
    assert snap.loaded is False and snap.guests == []


def test_reader_reads_a_tree(tmp_path):
    (tmp_path / 'v3-info').write_text(INFO)
    (tmp_path / 'v3-guests').write_text(GUESTS_TWO)
    (tmp_path / 'v3-mem0').write_text(MEM_THREE_POOLS)
    snap = proc.ProcReader(str(tmp_path)).snapshot(memory=True)
    assert snap.loaded and snap.block_size == 134217728 and snap.free_blocks() == 1
    assert snap.free_slots()[:2] == [2, 3] and len(snap.free_slots()) == 30
    assert snap.by_name('db')[0].index == 1


def test_parses_the_free_lists_of_the_buddy_dump():
    zone = proc.parse_mem(MEM_THREE_POOLS.replace('  order 22: 0 free blocks\n',
                                                  '  order 22: 0 free blocks\n  order 27: 1 free blocks\n'))
    assert zone['free_lists'] == {12: 0, 22: 0, 27: 1}
    assert proc.largest_free_block(zone) == 134217728


def test_largest_free_block_is_zero_when_every_list_is_empty_and_unknown_without_lists():
    assert proc.largest_free_block(proc.parse_mem(MEM_AFTER_INSMOD)) == 0
    assert proc.largest_free_block({'pools': []}) is None


def test_vms_fitting_applies_the_preflight_rule_repeatedly():
    zones = {0: proc.parse_mem(MEM_THREE_POOLS)}
    block = 134217728
    assert proc.vms_fitting(zones, block, 128 * 1048576) == 1
    assert proc.vms_fitting(zones, block, 129 * 1048576) == 0  # needs 2 blocks, 1 is free
    assert proc.vms_fitting(zones, 4194304, 8 * 1048576) == 16  # 32 free 4 MB blocks, 2 per VM
    assert proc.vms_fitting(zones, None, 1048576) == 0


def test_parses_details_memory_regions():
    detail = proc.parse_guests_details(DETAILS)[0]
    assert detail['memory_regions'] == [{'region': 0, 'hpa_start': 0x8000000, 'hpa_end': 0x10000000, 'node': 0,
                                         'gpa': 0, 'flags': []}]


def test_reader_reads_each_file_once(tmp_path, monkeypatch):
    (tmp_path / 'v3-info').write_text(INFO)
    (tmp_path / 'v3-guests').write_text(GUESTS_TWO)
    (tmp_path / 'v3-guests-details').write_text(DETAILS)
    (tmp_path / 'v3-mem0').write_text(MEM_THREE_POOLS)
    reader = proc.ProcReader(str(tmp_path))
    reads = []
    original = reader._read
    monkeypatch.setattr(reader, '_read', lambda name: reads.append(name) or original(name))
    snap = reader.snapshot(memory=True, details=True)
    assert sorted(reads) == ['v3-guests', 'v3-guests-details', 'v3-info', 'v3-mem0']
    assert snap.details[0]['name'] == 'vm1' and snap.zones[0]['pools']


def test_allocation_size_rounds_the_block_size_up_to_a_buddy_block():
    assert [proc.allocation_size(mb * 1048576) // 1048576 for mb in (1, 2, 3, 4, 6, 128, 129)] == [1, 2, 4, 4, 8, 128, 256]
    pools = {0: {'pools': [proc.Pool(0x8000000, 27, 1 << 27, 1 << 27), proc.Pool(0x7f400000, 22, 4194304, 4161536)]}}
    assert proc.free_blocks(pools, 3 * 1048576) == 32
    assert proc.free_blocks(pools, 2 * 1048576) == 64 + 1


def test_a_ghost_line_is_a_broken_slot():
    (entry,) = proc.parse_guests('fresh\t/dev/v3-vm2\t<unable to get data for this VM>\n')
    assert proc.is_broken(entry) and entry.index == 2
    snap = proc.Snapshot(True, [entry], {'runtime_block_size': 1 << 27})
    assert snap.broken() == [entry] and 2 not in snap.free_slots()
    assert 'reboot' in proc.broken_message(entry) and '/dev/v3-vm2' in proc.broken_message(entry)
