import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import memory, proc
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError

MB = 1024 * 1024
BLOCK = 128 * MB


def info(nodes=1, runtime=BLOCK, compiled=BLOCK, max_order=11):
    # Real v3-info layout (spec 2.3); parsed, not hand-built, so the planner sees what the parser gives.
    text = ('kernel MAX_ORDER:\t%d\nnumber of nodes:\t%d\nnumber of cpus: \t4\n\n'
            'palacios compiled mem_block_size:\t%d\npalacios run-time mem_block_size:\t%d\n\n'
            'CPU to node mappings\ncpu 0 -> node 0\n' % (max_order, nodes, compiled, runtime))
    return proc.parse_info(text)


def zone(*pools):
    """A v3-mem<N> dump in the real format (spec 2.4, observed 7); pools are (base, size, free)."""
    seed = '    Base Addr=000000007f400000, order=22, size=4194304, free=4161536\n'
    lines = [seed] + ['    Base Addr=%016x, order=%d, size=%d, free=%d\n' % (b, s.bit_length() - 1, s, f)
                      for b, s, f in pools]
    text = ('DUMP OF BUDDY MEMORY ZONE:\n  Zone Max Order=27, Min Order=12\n  order 12: 0 free blocks\n'
            ' %d memory pools\n' % len(lines)) + ''.join(lines)
    return proc.parse_mem(text)


def blocks(*per_node, **kw):
    """sysfs memory blocks: per node, (count, removable) runs laid out one after the other, all online."""
    out, number = [], 0
    for node, runs in enumerate(per_node):
        for count, removable in runs:
            for _block in range(count):
                out.append((number, node, kw.get('online', True), removable))
                number += 1
    return {'block_size': BLOCK, 'blocks': out}


PLENTY = blocks(*([(64, True)],) * 4)


def plan(zones, target, nodes=1, method='hotremove', below_4g=False, **kw):
    sysmem = kw.pop('sysmem', PLENTY)
    return memory.plan_memory(zones, info(nodes=nodes, **kw), target, sysmem, method=method, below_4g=below_4g)


def argvs(result):
    return [s['argv'] for s in result['steps']]


def test_seed_pool_is_not_reserved_memory():
    assert memory.reserved_bytes(zone()['pools']) == 0
    assert memory.reserved_bytes(zone((0x8000000, BLOCK, BLOCK))['pools']) == BLOCK


def test_grow_from_nothing_adds_block_size_chunks_until_target_met():
    result = plan({0: zone()}, {'total': 256})
    assert argvs(result) == [['-a', '128'], ['-a', '128']]
    assert result['reserved_after'] == {0: 256 * MB}


def test_target_not_a_multiple_rounds_up_to_a_whole_chunk_and_is_then_stable():
    assert argvs(plan({0: zone()}, {'total': 200})) == [['-a', '128'], ['-a', '128']]
    two = zone((0x8000000, BLOCK, BLOCK), (0x10000000, BLOCK, BLOCK))
    assert plan({0: two}, {'total': 200})['steps'] == []


def test_target_met_is_a_no_op():
    assert plan({0: zone((0x8000000, BLOCK, BLOCK))}, {'per_node': {'0': 128}})['steps'] == []


def test_shrink_releases_free_pools_highest_address_first():
    zones = {0: zone((0x8000000, BLOCK, BLOCK), (0x10000000, BLOCK, BLOCK), (0x18000000, BLOCK, BLOCK))}
    result = plan(zones, {'total': 128})
    assert argvs(result) == [['-r', '0x18000000'], ['-r', '0x10000000']]
    assert result['reserved_after'] == {0: 128 * MB}


def test_shrink_keeps_the_pool_a_vm_uses():
    zones = {0: zone((0x8000000, BLOCK, 0), (0x10000000, BLOCK, BLOCK), (0x18000000, BLOCK, BLOCK))}
    assert argvs(plan(zones, {'total': 128})) == [['-r', '0x18000000'], ['-r', '0x10000000']]


def test_shrink_to_zero_releases_everything_free_and_fails_listing_pools_in_use():
    zones = {0: zone((0x8000000, BLOCK, 0), (0x10000000, BLOCK, BLOCK))}
    with pytest.raises(V3veeError) as err:
        plan(zones, {'total': 0})
    assert 'in use' in str(err.value) and '0x8000000' in str(err.value)


def test_shrink_to_zero_with_only_free_pools():
    zones = {0: zone((0x8000000, BLOCK, BLOCK), (0x10000000, BLOCK, BLOCK))}
    assert argvs(plan(zones, {'total': 0})) == [['-r', '0x10000000'], ['-r', '0x8000000']]


def test_a_partly_used_pool_is_never_released():
    zones = {0: zone((0x8000000, BLOCK, BLOCK - 4096))}
    with pytest.raises(V3veeError):
        plan(zones, {'total': 0})


def test_the_seed_is_never_released_even_when_fully_free():
    text = ('DUMP OF BUDDY MEMORY ZONE:\n  Zone Max Order=27, Min Order=12\n 2 memory pools\n'
            '    Base Addr=0000000006400000, order=22, size=4194304, free=4194304\n'
            '    Base Addr=0000000108000000, order=27, size=134217728, free=134217728\n')
    assert argvs(plan({0: proc.parse_mem(text)}, {'total': 0})) == [['-r', '0x108000000']]


def test_method_kernel_with_the_default_block_size_is_refused_naming_the_option():
    with pytest.raises(V3veeError) as err:
        plan({0: zone()}, {'total': 128}, method='kernel')
    assert 'method kernel needs the module loaded with options mem_block_size=4194304' in str(err.value)


def test_method_kernel_is_not_checked_when_nothing_is_added():
    zones = {0: zone((0x8000000, BLOCK, BLOCK))}
    assert plan(zones, {'total': 128}, method='kernel')['steps'] == []


def test_method_kernel_with_4mb_blocks_adds_4mb_chunks_with_k_and_l():
    small = 4 * MB
    zones = {0: zone()}
    result = plan(zones, {'total': 12}, method='kernel', below_4g=True, runtime=small)
    assert argvs(result) == [['-k', '-l', '-a', '4']] * 3


def test_kernel_method_seed_and_chunks_are_alike_one_is_kept_as_seed():
    small = 4 * MB
    z = zone((0x1000000, small, small), (0x2000000, small, small))
    result = plan({0: z}, {'total': 0}, method='kernel', runtime=small)
    assert argvs(result) == [['-r', '0x2000000'], ['-r', '0x1000000']]


def test_runtime_block_larger_than_compiled_is_refused():
    with pytest.raises(V3veeError) as err:
        plan({0: zone()}, {'total': 256}, runtime=256 * MB)
    assert 'compiled block size' in str(err.value)


def test_unparsable_runtime_option_is_refused():
    with pytest.raises(V3veeError):
        plan({0: zone()}, {'total': 256}, runtime=18446744073709551615)


def test_small_block_is_raised_to_the_tool_minimum():
    result = plan({0: zone()}, {'total': 1}, runtime=131072)
    assert argvs(result) == [['-a', '0.25']] * 4


def test_per_node_targets_use_n_on_multi_node_hosts():
    zones = {0: zone(), 1: zone((0x208000000, BLOCK, BLOCK))}
    result = plan(zones, {'per_node': {'0': 128, '1': 0}}, nodes=2)
    assert argvs(result) == [['-n', '0', '-a', '128'], ['-r', '0x208000000']]
    assert result['reserved_after'] == {0: BLOCK, 1: 0}


def test_total_on_multi_node_goes_to_the_least_reserved_node():
    zones = {0: zone((0x8000000, BLOCK, BLOCK)), 1: zone()}
    result = plan(zones, {'total': 512}, nodes=2)
    assert [s['node'] for s in result['steps']] == [1, 0, 1]
    assert result['reserved_after'] == {0: 256 * MB, 1: 256 * MB}


def test_unknown_node_is_refused():
    with pytest.raises(V3veeError) as err:
        plan({0: zone()}, {'per_node': {'3': 128}})
    assert 'does not exist' in str(err.value)


def test_predict_pools_adds_unknown_bases_and_drops_released():
    zones = {0: zone((0x8000000, BLOCK, BLOCK))}
    result = plan(zones, {'total': 256})
    pools = memory.predict_pools(zones, result['steps'], 1)[0]
    assert [p['base'] for p in pools] == ['0x8000000', '0x7f400000', None]
    zero = plan(zones, {'total': 0})
    assert [p['base'] for p in memory.predict_pools(zones, zero['steps'], 1)[0]] == ['0x7f400000']


def test_leaked_offline_range_is_one_that_backs_no_pool():
    # Observed 6: `v3_mem -a 256` offlined 256 MiB at 0x8000000, was rejected, stays recorded.
    offline = memory.parse_offline_file('10000000\t8000000\n8000000\t10000000\n')
    zones = {0: zone((0x10000000, BLOCK, BLOCK))}
    assert memory.leaked_ranges(offline, zones) == [(0x8000000, 0x10000000)]
    assert 'memory<N>/state' in memory.leak_remedy([(0x8000000, 0x10000000)], '/opt/p')


def test_format_mb():
    assert memory.format_mb(BLOCK) == '128'
    assert memory.format_mb(262144) == '0.25'


def test_a_target_beyond_what_the_host_can_offline_fails_before_anything_runs_and_says_what_is_reachable():
    # 1536 MB reserved (12 pools), 18 more removable blocks: at most 3840 MB.
    pools = [(0x8000000 + i * BLOCK, BLOCK, BLOCK) for i in range(12)]
    with pytest.raises(V3veeError) as err:
        plan({0: zone(*pools)}, {'total': 1000000}, sysmem=blocks([(18, True)]))
    text = str(err.value)
    assert 'Cannot reserve 1000000 MB in total: 1536 MB is reserved now' in text
    assert 'at most 2304 MB (node 0 2304 MB more (18 chunk(s) of 128 MB)' in text
    assert 'at most 3840 MB can be reached. Nothing was run.' in text
    assert err.value.observed == {'reserved_mb': '1536', 'reachable_mb': '3840'}
    assert len(argvs(plan({0: zone(*pools)}, {'total': 3840}, sysmem=blocks([(18, True)])))) == 18


def test_capacity_counts_only_consecutive_online_removable_blocks_of_one_node():
    # 256 MB chunks need 2 consecutive blocks: runs of 3, 1 and 4 removable blocks give 1 + 0 + 2.
    sysmem = blocks([(3, True), (1, False), (1, True), (1, False), (4, True)])
    capacity = memory.chunk_capacity(sysmem, 2 * BLOCK, 'hotremove', False, 1)
    assert capacity == {0: 3}
    offline = dict(sysmem, blocks=[(n, node, n != 1, r) for n, node, _on, r in sysmem['blocks']])
    assert memory.chunk_capacity(offline, 2 * BLOCK, 'hotremove', False, 1) == {0: 2}
    # -n: blocks of the next node do not extend a run.
    assert memory.chunk_capacity(blocks([(1, True)], [(1, True)]), 2 * BLOCK, 'hotremove', False, 2) == {0: 0, 1: 0}


def test_below_4g_counts_only_the_first_4_gb_of_blocks():
    capacity = memory.chunk_capacity(blocks([(64, True)]), BLOCK, 'hotremove', True, 1)
    assert capacity == {0: 32}


def test_kernel_method_is_bounded_by_the_nodes_online_memory():
    sysmem = blocks([(2, False), (2, True)])
    assert memory.chunk_capacity(sysmem, 4 * MB, 'kernel', False, 1) == {0: 4 * 32}
    with pytest.raises(V3veeError, match='at most 512 MB can be reached'):
        plan({0: zone()}, {'total': 1024}, method='kernel', runtime=4 * MB, sysmem=sysmem)


def test_a_total_target_skips_nodes_that_cannot_give_more():
    result = plan({0: zone(), 1: zone()}, {'total': 512}, nodes=2, sysmem=blocks([(1, True)], [(8, True)]))
    assert argvs(result) == [['-n', '0', '-a', '128']] + [['-n', '1', '-a', '128']] * 3


def test_a_node_target_beyond_that_node_fails_even_if_others_have_room():
    with pytest.raises(V3veeError, match='Cannot reserve 256 MB node 0: .* at most 128 MB can be reached'):
        plan({0: zone(), 1: zone()}, {'per_node': {0: 256}}, nodes=2, sysmem=blocks([(1, True)], [(8, True)]))


def test_hot_remove_without_memory_blocks_is_refused_before_anything_runs():
    with pytest.raises(V3veeError, match='shows none under <sys_dir>/devices/system/memory'):
        plan({0: zone()}, {'total': 128}, sysmem=None)
    assert plan({0: zone((0x8000000, BLOCK, BLOCK))}, {'total': 0}, sysmem=None)['steps'][0]['op'] == 'release'


def test_repeated_adds_are_returned_as_one_entry_with_a_count():
    steps = plan({0: zone()}, {'total': 18 * 128})['steps']
    assert len(steps) == 18
    assert memory.group_steps(steps) == [{'op': 'add', 'node': 0, 'size': BLOCK, 'argv': ['-a', '128'], 'count': 18}]


def test_read_memory_blocks_reads_the_sysfs_layout(tmp_path):
    base = tmp_path / 'devices' / 'system' / 'memory'
    for number, state, removable, node in ((0, 'online', '0', 0), (1, 'offline', '1', 0), (32, 'online', '1', 1)):
        block = base / ('memory%d' % number)
        block.mkdir(parents=True)
        (block / 'state').write_text(state + '\n')
        (block / 'removable').write_text(removable + '\n')
        (block / ('node%d' % node)).mkdir()
    (base / 'block_size_bytes').write_text('8000000\n')
    assert memory.read_memory_blocks(str(tmp_path)) == {
        'block_size': BLOCK, 'blocks': [(0, 0, True, False), (1, 0, False, True), (32, 1, True, True)]}
    assert memory.read_memory_blocks(str(tmp_path / 'none')) is None
