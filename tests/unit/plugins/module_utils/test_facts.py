import builtins
import os
import sqlite3

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import facts, kmsg, proc
from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore, new_record

MB = 1048576
BLOCK = 128 * MB
RULE = '-' * 87


# -- a synthetic /proc/v3vee in the formats of interface spec section 2 --------------------------
def info_text(cpus=4, nodes=1, block=BLOCK):
    lines = ['kernel MAX_ORDER:\t11', 'number of nodes:\t%d' % nodes, 'number of cpus: \t%d' % cpus, '',
             'palacios compiled mem_block_size:\t%d' % BLOCK, 'palacios run-time mem_block_size:\t%d' % block, '',
             'CPU to node mappings']
    lines += ['cpu %d -> node %d' % (cpu, cpu * nodes // cpus) for cpu in range(cpus)]
    return '\n'.join(lines + ['', 'Node to node distances', '   \t 0', ' 0 \t10', '']) + '\n'


def guests_text(vms):
    return ''.join('%s\t/dev/v3-vm%d\t%s\t%d vcores\t%d regions\t%d mem\tgeneral\n'
                   % (name, slot, state, 1, -(-mem // BLOCK), mem) for slot, name, state, mem in vms)


def details_text(vms):
    out = []
    for slot, name, state, mem in vms:
        out += [RULE, 'Entry:        %d' % slot, 'Name:         %s' % name, 'Device:       /dev/v3-vm%d' % slot,
                'Type:         general', 'State:        %s' % state, 'Cores:        1 (1 shown)',
                'Regions:      1 (1 shown)', 'Memsize:      %d (%d ROS)' % (mem, mem), '', 'Core States',
                '   vcore 0 %s on pcore %d 15748 exits rip=0x000000000000fff0 real physical shadow '
                % (state, slot % 4), '', 'Memory Regions',
                '   region 0 has HPAs 0x%016x-0x%016x (node 0) GPA 0x0000000000000000  '
                % (0x100000000 + slot * BLOCK, 0x100000000 + (slot + 1) * BLOCK), RULE]
    return '\n'.join(out) + '\n' if out else ''


def mem_text(pools, free_lists=None):
    """pools: (base, order, free); free_lists: {order: count}."""
    lines = ['DUMP OF BUDDY MEMORY ZONE:', '  Zone Max Order=27, Min Order=12']
    lines += ['  order %2d: %d free blocks' % (order, (free_lists or {}).get(order, 0)) for order in range(12, 28)]
    lines.append(' %d memory pools' % len(pools))
    lines += ['    Base Addr=%016x, order=%d, size=%d, free=%d' % (base, order, 1 << order, free)
              for base, order, free in pools]
    return '\n'.join(lines) + '\n'


SEED = (0x7f400000, 22, 4161536)


def build(tmp_path, vms=(), pools=None, free_lists=None, nodes=1, loaded=True):
    """A host: proc tree, dev dir, empty inventory path. Returns Settings for it."""
    proc_dir = tmp_path / 'proc' / 'v3vee'
    dev_dir = tmp_path / 'dev'
    dev_dir.mkdir(parents=True)
    if loaded:
        proc_dir.mkdir(parents=True)
        (proc_dir / 'v3-info').write_text(info_text(nodes=nodes))
        (proc_dir / 'v3-guests').write_text(guests_text(vms))
        (proc_dir / 'v3-guests-details').write_text(details_text(vms))
        for node in range(nodes):
            node_pools = pools if pools is not None else [SEED]
            (proc_dir / ('v3-mem%d' % node)).write_text(mem_text(node_pools, free_lists))
        (dev_dir / 'v3vee').write_text('')
    return Settings(proc_dir=str(proc_dir), dev_dir=str(dev_dir), inventory_path=str(tmp_path / 'lib' / 'inv.db'),
                    kernel_log=str(tmp_path / 'kmsg.log'), tools_dir=str(tmp_path / 'bin'), backend='simulator')


def record(settings, name, slot=None, state='inactive', desired='inactive'):
    store = InventoryStore(settings.inventory_path)
    with store.transaction():
        store.put(new_record(name, {'config': '/srv/%s.xml' % name}, slot,
                             '/dev/v3-vm%d' % slot if slot is not None else None, state, desired))
    store.close()


def no_commands(argv, cwd=None, env_update=None):
    raise AssertionError('no command may run: %r' % (argv,))


def gather(settings, **kwargs):
    kwargs.setdefault('which', lambda name: None)
    return facts.gather(settings, no_commands, **kwargs)


# -- gather_subset ------------------------------------------------------------------------------------
@pytest.mark.parametrize('spec, expected', [
    (None, list(facts.SUBSETS)),
    (['all'], list(facts.SUBSETS)),
    (['!telemetry'], ['tools', 'host', 'memory', 'vms']),
    (['!all'], []),
    (['min'], []),
    (['!all', 'vms'], ['vms']),
    (['memory', 'host'], ['host', 'memory']),
    (['all', '!memory', '!tools'], ['host', 'vms', 'telemetry']),
    (['vms', '!vms'], ['vms']),  # named explicitly wins, as in setup
])
def test_gather_subset_reads_like_setup(spec, expected):
    assert facts.resolve_subsets(spec) == expected


@pytest.mark.parametrize('spec', [['hardware'], ['!vm'], ['all', 'telemetri']])
def test_unknown_subsets_are_refused(spec):
    with pytest.raises(V3veeError, match='Unknown gather_subset'):
        facts.resolve_subsets(spec)


def test_left_out_subsets_have_no_key(tmp_path):
    out = gather(build(tmp_path), subsets=['memory'])
    assert 'memory' in out and not set(out) & set(['host', 'vms', 'tools', 'telemetry', 'inventory'])
    assert out['module_loaded'] is True and out['backend'] == 'simulator' and out['gather_subset'] == ['memory']


# -- host and memory -----------------------------------------------------------------------------------
def test_no_vms_and_only_the_seed_pool(tmp_path):
    out = gather(build(tmp_path), subsets=list(facts.SUBSETS))
    assert out['module_loaded'] and out['control_device_present'] and out['problems'] == []
    assert out['host'] == {'nodes': 1, 'cpus': 4, 'cpu_to_node': [0, 0, 0, 0], 'kernel_max_order': 11,
                           'kernel_largest_alloc': 4194304, 'compiled_block_size': BLOCK,
                           'runtime_block_size': BLOCK, 'max_vms': 32, 'vm_slots_used': 0, 'vm_slots_free': 32,
                           'broken_slots': []}
    mem = out['memory']
    assert (mem['reserved_bytes'], mem['pool_bytes'], mem['free_bytes'], mem['free_blocks']) == (0, 4194304, 4161536, 0)
    assert mem['fits'] == [{'mem_mb': 128, 'blocks_per_vm': 1, 'vms': 0, 'vms_by_memory': 0, 'free_slots': 32}]
    assert out['vms'] == [] and out['vm_counts']['total'] == 0 and out['inventory']['exists'] is False


def test_memory_per_node_with_the_seed_not_first_by_address(tmp_path):
    pools = [(0x8000000, 27, 0), (0x10000000, 27, BLOCK), SEED, (0x180000000, 27, BLOCK)]
    settings = build(tmp_path, vms=[(0, 'web1', 'running', BLOCK)], pools=pools, free_lists={27: 2, 15: 1},
                     nodes=2)
    out = gather(settings, subsets=['memory'], vm_mem_mb=[128, 256, 129])
    node = out['memory']['nodes'][0]
    assert node['pools'][0] == {'base': '0x0000000008000000', 'order': 27, 'size': BLOCK, 'free': 0}
    assert node['pool_bytes'] == 3 * BLOCK + 4194304
    assert node['reserved_bytes'] == 3 * BLOCK  # the seed is subtracted once, wherever it sits
    assert node['free_bytes'] == 2 * BLOCK + 4161536
    assert node['largest_free_block'] == BLOCK and node['free_blocks'] == 2
    assert [f['vms'] for f in node['fits']] == [2, 1, 1]
    mem = out['memory']
    assert len(mem['nodes']) == 2 and mem['reserved_bytes'] == 6 * BLOCK and mem['free_blocks'] == 4
    assert [(f['mem_mb'], f['blocks_per_vm'], f['vms']) for f in mem['fits']] == [(128, 1, 4), (256, 2, 2), (129, 2, 2)]


def test_fits_is_limited_by_free_slots(tmp_path):
    vms = [(slot, 'vm%d' % slot, 'stopped', 4 * MB) for slot in range(31)]
    pools = [SEED] + [(0x100000000 + i * BLOCK, 27, BLOCK) for i in range(4)]
    out = gather(build(tmp_path, vms=vms, pools=pools), subsets=['memory'])
    (fit,) = out['memory']['fits']
    assert (fit['vms_by_memory'], fit['free_slots'], fit['vms']) == (4, 1, 1)


def test_fits_uses_the_same_rule_as_the_v3vee_vm_preflight(tmp_path):
    # preflight refuses exactly when blocks_needed > free_blocks, i.e. when fits would be 0.
    out = gather(build(tmp_path, pools=[SEED, (0x100000000, 27, BLOCK)]), subsets=['memory'], vm_mem_mb=[128, 129])
    assert [f['vms'] for f in out['memory']['fits']] == [1, 0]
    zones = {0: proc.parse_mem(mem_text([SEED, (0x100000000, 27, BLOCK)]))}
    assert proc.blocks_needed(129 * MB, BLOCK) > proc.free_blocks(zones, BLOCK)


# -- VMs ---------------------------------------------------------------------------------------------------
def test_one_vm_of_each_category_with_drift(tmp_path):
    vms = [(0, 'web1', 'running', BLOCK), (1, 'cli', 'stopped', 256 * MB)]
    settings = build(tmp_path, vms=vms)
    record(settings, 'web1', slot=0, state='stopped', desired='running')
    record(settings, 'db', slot=5, state='running', desired='running')
    out = gather(settings, subsets=['vms'])
    by_name = out['vms_by_name']
    assert [vm['name'] for vm in out['vms']] == ['web1', 'db', 'cli']  # the GUI's heading order
    web1 = by_name['web1']
    assert (web1['category'], web1['state'], web1['slot'], web1['device'], web1['in_kernel']) == (
        'active_inventory', 'running', 0, '/dev/v3-vm0', True)
    assert (web1['config'], web1['desired_state'], web1['recorded_state'], web1['drift']) == (
        '/srv/web1.xml', 'running', 'stopped', ['state_changed'])
    db = by_name['db']
    assert (db['category'], db['state'], db['slot'], db['recorded_slot'], db['in_kernel']) == (
        'inactive_inventory', 'inactive', None, 5, False)
    assert db['drift'] == ['slot_gone', 'state_changed', 'not_desired_state']
    cli = by_name['cli']
    assert (cli['category'], cli['mem_mb'], cli['regions'], cli['in_inventory'], cli['drift']) == (
        'not_in_inventory', 256, 2, False, [])
    assert out['vm_counts'] == {'total': 3, 'in_kernel': 2, 'drifted': 2, 'broken': 0,
                                'by_category': {'active_inventory': 1, 'inactive_inventory': 1, 'not_in_inventory': 1},
                                'by_state': {'running': 1, 'inactive': 1, 'stopped': 1}}
    assert 'cores' not in web1


def test_thirty_two_vms(tmp_path):
    vms = [(slot, 'vm%02d' % slot, ('running', 'paused', 'stopped')[slot % 3], 4 * MB) for slot in range(32)]
    settings = build(tmp_path, vms=vms)
    for slot in range(0, 32, 2):
        record(settings, 'vm%02d' % slot, slot=slot, state=vms[slot][2], desired=vms[slot][2])
    out = gather(settings, subsets=['host', 'vms', 'memory'], vm_details=True)
    assert out['host']['vm_slots_free'] == 0 and out['memory']['fits'][0]['vms'] == 0
    assert len(out['vms']) == 32 and out['vm_counts']['by_category'] == {
        'active_inventory': 16, 'inactive_inventory': 0, 'not_in_inventory': 16}
    assert out['vm_counts']['drifted'] == 0 and out['duplicate_names'] == []
    assert [vm['slot'] for vm in out['vms'][:16]] == list(range(0, 32, 2))
    vm31 = out['vms_by_name']['vm31']
    assert vm31['cores'] == [{'vcore': 0, 'state': 'paused', 'pcore': 3, 'exits': 15748, 'rip': '0x000000000000fff0',
                              'cpu_mode': 'real', 'mem_mode': 'physical', 'paging': 'shadow', 'vcore_type': ''}]
    assert vm31['memory_regions'][0]['node'] == 0 and vm31['memory_regions'][0]['hpa_start'] == '0x%016x' % (
        0x100000000 + 31 * BLOCK)


def test_duplicate_kernel_names_are_listed_but_not_keyed(tmp_path):
    vms = [(0, 'web1', 'running', BLOCK), (1, 'web1', 'stopped', BLOCK), (2, 'db', 'stopped', BLOCK)]
    settings = build(tmp_path, vms=vms)
    record(settings, 'web1', slot=None, state='running', desired='running')
    out = gather(settings, subsets=['vms'])
    assert out['duplicate_names'] == ['web1'] and sorted(out['vms_by_name']) == ['db']
    web1s = [vm for vm in out['vms'] if vm['name'] == 'web1']
    assert len(web1s) == 3 and all(vm['duplicate_name'] for vm in web1s)
    recorded = [vm for vm in web1s if vm['in_inventory']][0]
    assert recorded['category'] == 'inactive_inventory' and 'duplicate_names' in recorded['drift']


def test_vm_details_for_inactive_vms_are_null(tmp_path):
    settings = build(tmp_path, loaded=False)
    record(settings, 'web1', slot=0, state='running', desired='running')
    (vm,) = gather(settings, subsets=['vms'], vm_details=True)['vms']
    assert vm['cores'] is None and vm['memory_regions'] is None


# -- no Palacios, broken things ----------------------------------------------------------------------------
def test_module_not_loaded_lists_the_inventory_as_inactive(tmp_path):
    settings = build(tmp_path, loaded=False)
    record(settings, 'web1', slot=0, state='running', desired='running')
    out = gather(settings, subsets=list(facts.SUBSETS))
    assert out['module_loaded'] is False and out['control_device_present'] is False
    assert out['host'] is None and out['memory'] is None and out['problems'] == []
    (vm,) = out['vms']
    assert (vm['category'], vm['state'], vm['drift']) == (
        'inactive_inventory', 'inactive', ['slot_gone', 'state_changed', 'not_desired_state'])
    assert out['tools'] == {'found': {}, 'missing': list(facts.FACT_TOOLS), 'search_dirs': [settings.tools_dir]}
    assert out['telemetry']['source'] == 'file' and out['telemetry']['lines'] == []


def test_a_host_without_anything(tmp_path):
    settings = Settings(proc_dir=str(tmp_path / 'nope'), dev_dir=str(tmp_path / 'nodev'),
                        inventory_path=str(tmp_path / 'none' / 'inv.db'), tools_dir=str(tmp_path / 'nobin'))
    out = facts.gather(settings, no_commands, subsets=list(facts.SUBSETS), which=lambda name: None,
                       telemetry_source='file')
    assert out['module_loaded'] is False and out['problems'] == [] and out['vms'] == []
    assert out['inventory'] == {'path': settings.inventory_path, 'exists': False, 'records': 0, 'checkpoints': 0, 'error': None}
    assert not os.path.exists(str(tmp_path / 'none'))  # read-only: nothing created


@pytest.mark.parametrize('content', [b'this is not sqlite at all' * 100, 'foreign'])
def test_unreadable_inventory_is_a_problem_not_a_failure(tmp_path, content):
    settings = build(tmp_path, vms=[(0, 'web1', 'running', BLOCK)])
    os.makedirs(os.path.dirname(settings.inventory_path))
    if content == 'foreign':
        conn = sqlite3.connect(settings.inventory_path)
        conn.execute('CREATE TABLE guests (name TEXT)')
        conn.commit()
        conn.close()
    else:
        with open(settings.inventory_path, 'wb') as handle:
            handle.write(content)
    out = gather(settings, subsets=['vms'])
    assert out['inventory']['error'] and len(out['problems']) == 1 and 'inventory' in out['problems'][0]
    assert [(vm['name'], vm['category']) for vm in out['vms']] == [('web1', 'not_in_inventory')]


def test_unparsable_proc_is_a_problem_not_a_failure(tmp_path):
    settings = build(tmp_path)
    with open(os.path.join(settings.proc_dir, 'v3-guests'), 'w') as handle:
        handle.write('garbage line\n')
    out = gather(settings, subsets=['host', 'vms'])
    assert out['module_loaded'] is True and out['host'] is None and out['vms'] == []
    assert 'Cannot parse line 1 of v3-guests' in out['problems'][0]


def test_garbage_in_the_details_file_is_a_problem_not_a_failure(tmp_path):
    settings = build(tmp_path, vms=[(0, 'web1', 'running', BLOCK)])
    with open(os.path.join(settings.proc_dir, 'v3-guests-details'), 'w') as handle:
        handle.write('Entry:        zero\n')
    out = gather(settings, subsets=['vms'], vm_details=True)
    assert out['vms'] == [] and 'Cannot parse' in out['problems'][0]


def test_an_unreadable_configured_kernel_log_is_a_problem(tmp_path):
    settings = build(tmp_path)
    os.mkdir(settings.kernel_log)
    out = gather(settings, subsets=['telemetry'])
    assert out['telemetry']['lines'] == [] and out['telemetry']['error'].startswith('Cannot read the kernel log')
    assert out['problems'] == [out['telemetry']['error']]


def test_reads_each_proc_file_once_and_writes_nothing(tmp_path, monkeypatch):
    vms = [(slot, 'vm%d' % slot, 'running', BLOCK) for slot in range(32)]
    settings = build(tmp_path, vms=vms, nodes=2)
    record(settings, 'vm0', slot=0, state='running', desired='running')
    opened = []
    real_open = builtins.open

    def counting_open(path, mode='r', *args, **kwargs):
        opened.append((str(path), mode))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, 'open', counting_open)
    gather(settings, subsets=list(facts.SUBSETS), vm_details=True)
    proc_reads = sorted(os.path.basename(path) for path, mode in opened if path.startswith(settings.proc_dir))
    assert proc_reads == ['v3-guests', 'v3-guests-details', 'v3-info', 'v3-mem0', 'v3-mem1']
    assert all(set(mode) <= set('rb') for path, mode in opened)


def test_telemetry_from_the_configured_log_per_vm(tmp_path):
    settings = build(tmp_path)
    with open(settings.kernel_log, 'w') as handle:
        handle.write('[ 1.0] palacios (pcore 0): READ GUEST\n'
                     '[ 2.0] palacios (pcore 0 vm a): Starting\n'
                     '[ 3.0] palacios (pcore 1 vm b): Starting\n')
    out = gather(settings, subsets=['telemetry'])['telemetry']
    assert [m['vm'] for m in out['messages']] == ['a', 'b'] and out['path'] == settings.kernel_log
    out = gather(settings, subsets=['telemetry'], telemetry_vm='b', telemetry_lines=1)['telemetry']
    assert out['lines'] == ['[ 3.0] palacios (pcore 1 vm b): Starting'] and out['vm'] == 'b'
    out = gather(settings, subsets=['telemetry'], telemetry_exclude=())['telemetry']
    assert out['messages'][0]['message'] == 'READ GUEST'


def test_telemetry_only_does_not_touch_proc(tmp_path, monkeypatch):
    settings = build(tmp_path)
    monkeypatch.setattr(proc.ProcReader, '_read', lambda self, name: pytest.fail('read %s' % name))
    out = gather(settings, subsets=['telemetry', 'tools'])
    assert out['module_loaded'] is True and 'telemetry' in out


def test_facts_are_json_and_yaml_safe(tmp_path):
    import json
    settings = build(tmp_path, vms=[(0, 'web1', 'running', BLOCK)], nodes=2)
    record(settings, 'web1', slot=0, state='running', desired='running')
    out = gather(settings, subsets=list(facts.SUBSETS), vm_details=True)
    assert json.loads(json.dumps(out)) == out  # no int dict keys, tuples or other non-JSON values


def test_default_exclude_is_the_module_default():
    assert list(kmsg.DEFAULT_EXCLUDE) == ['^READ GUEST']
