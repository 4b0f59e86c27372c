"""Hostile input for every parser of what the host shows (/proc/v3vee, kernel log, GUI file,
host settings): whatever the bytes, a parser returns a result or raises V3veeError with a
message, within bounded time and memory; what a writer (the simulator's /proc, the GUI file
writer) renders parses back to what was written."""
import os
import re
import tempfile
import tracemalloc

import pytest
from hypothesis import assume, example, given, settings, strategies as st

from ansible_collections.v3vee.palacios.plugins.module_utils import facts, guifile, kmsg, memory, proc
from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, read_host_conf
from ansible_collections.v3vee.palacios.plugins.plugin_utils import status_page
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import validate_name
from simhost import make_sim, v3sim

# Every code point, lone surrogates included (what surrogateescape-decoded bytes give).
ANY_CHAR = st.characters(codec=None, exclude_categories=())
HUGE_NUMBER = '9' * 4400  # past Python's int() digit limit (4300)


def hostile_text(fragments):
    """Text made of the format's own pieces mixed with any characters: most examples get far
    into the parser instead of failing on the first byte."""
    piece = st.one_of(st.sampled_from(fragments), st.text(ANY_CHAR, max_size=8),
                      st.sampled_from(['\t', '\n', ' ', '\r', HUGE_NUMBER, '-1', '0x', '\u0663', '\xb2']))
    return st.lists(piece, max_size=60).map(''.join)


def only_v3vee_error(parse, text):
    try:
        return parse(text)
    except V3veeError as err:
        assert str(err), 'a V3veeError without a message'
        return None


# /proc/v3vee/v3-guests (spec 2.1)

GUEST_PIECES = ['web1', '\t/dev/v3-vm', '0', '31', '\trunning', '\tstopped', '\tUNKNOWN', '\t2 vcores',
                '\t4 regions', '\t536870912 mem', '\tgeneral', '\t' + proc.UNAVAILABLE, '\n']


@given(hostile_text(GUEST_PIECES))
@example('x\t/dev/v3-vm' + HUGE_NUMBER + '\n')
@example('a\t/dev/v3-vm0\tstopped\t1 vcores\t1 regions\t1 mem\tgeneral\n'
         'b\t/dev/v3-vm0\tstopped\t1 vcores\t1 regions\t1 mem\tgeneral\n')
def test_v3_guests_parses_or_says_why(text):
    entries = only_v3vee_error(proc.parse_guests, text)
    if entries is not None:
        slots = [e.index for e in entries]
        assert slots == sorted(set(slots)), 'one slot listed twice would let an action hit the wrong VM'
        assert all(0 <= slot < proc.MAX_VMS for slot in slots)
        assert all('\n' not in e.name for e in entries)


def test_v3_guests_slot_listed_twice_is_refused():
    line = 'a\t/dev/v3-vm0\tstopped\t1 vcores\t1 regions\t1 mem\tgeneral\n'
    with pytest.raises(V3veeError, match='twice'):
        proc.parse_guests(line + line.replace('a\t', 'b\t'))


def test_v3_guests_device_with_non_ascii_digits_is_not_a_slot():
    with pytest.raises(V3veeError, match='line 1'):
        proc.parse_guests('a\t/dev/v3-vm\u0663\tstopped\t1 vcores\t1 regions\t1 mem\tgeneral\n')


# /proc/v3vee/v3-guests-details (spec 2.2)

DETAIL_PIECES = ['-' * 87 + '\n', 'Entry:        ', '0', '\nName:         ', 'web 1 ', '\nState:        running',
                 '\nType:         general', '\n   vcore 0 running on pcore 1 123 exits rip=0x00000000c0100f3a long '
                 'virtual nested \n', '   region 0 has HPAs 0x0000000108000000-0x0000000110000000 (node 0) '
                 'GPA 0x0000000000000000  \n', '\n', proc.UNAVAILABLE]


@given(hostile_text(DETAIL_PIECES))
@example('Entry: x\n')
@example('Entry: ' + HUGE_NUMBER + '\n')
@example('Entry: 0\n   vcore ' + HUGE_NUMBER + ' running on pcore 1 1 exits rip=0x0 long\n')
def test_v3_guests_details_parses_or_says_why(text):
    details = only_v3vee_error(proc.parse_guests_details, text)
    if details is not None:
        assert all(isinstance(slot, int) and 0 <= slot < proc.MAX_VMS for slot in details)


def test_v3_guests_details_keeps_a_name_with_outer_spaces():
    text = 'Entry:        3\nName:          two  spaces  \nDevice:       /dev/v3-vm3\n'
    assert proc.parse_guests_details(text)[3]['name'] == ' two  spaces  '


# /proc/v3vee/v3-info (spec 2.3)

INFO_PIECES = ['kernel MAX_ORDER:\t', 'number of nodes:\t', 'number of cpus: \t',
               'palacios compiled mem_block_size:\t', 'palacios run-time mem_block_size:\t', '11', '1', '4',
               '134217728', '18446744073709551615', '0', '\n', 'cpu 0 -> node 0\n', 'cpu 1 -> node 7\n']
GOOD_INFO = ('kernel MAX_ORDER:\t11\nnumber of nodes:\t1\nnumber of cpus: \t4\n\n'
             'palacios compiled mem_block_size:\t134217728\npalacios run-time mem_block_size:\t134217728\n')


@given(hostile_text(INFO_PIECES))
@example(GOOD_INFO.replace('\t11', '\t\xb2'))
@example(GOOD_INFO.replace('\t1\n', '\t' + HUGE_NUMBER + '\n'))
@example(GOOD_INFO.replace('\t1\n', '\t1000000000000\n'))
@example(GOOD_INFO.replace('\t11', '\t0'))
def test_v3_info_parses_or_says_why(text):
    info = only_v3vee_error(proc.parse_info, text)
    if info is not None:
        # Consumers loop over the nodes and shift by MAX_ORDER: only kernel-possible values pass.
        assert 1 <= info['nodes'] <= proc.MAX_NODES and 1 <= info['cpus'] <= proc.MAX_CPUS
        assert 1 <= info['max_order'] <= proc.MAX_ORDER_LIMIT
        assert all(0 <= node < info['nodes'] for node in info['cpu_to_node'].values())


def test_v3_info_unparsable_block_size_option_is_still_read():
    # An unparsable mem_block_size module option prints 2**64 - 1 (spec 2.3): the memory planner
    # refuses it with its own message, the parser must not.
    info = proc.parse_info(GOOD_INFO.replace('run-time mem_block_size:\t134217728', 'run-time mem_block_size:\t'
                                             '18446744073709551615'))
    assert info['runtime_block_size'] == 2 ** 64 - 1


# /proc/v3vee/v3-mem<N> (spec 2.4)

MEM_PIECES = ['DUMP OF BUDDY MEMORY ZONE:\n', '  Zone Max Order=27, Min Order=12\n', '  order 12: 0 free blocks\n',
              '  order ', ': ', ' free blocks\n', ' 2 memory pools\n', '    Base Addr=', '000000007f400000',
              ', order=', '22', ', size=', '4194304', ', free=', '4161536', '\n', 'x', '0x0x', '4096']


@given(hostile_text(MEM_PIECES))
@example('    Base Addr=xx, order=22, size=1, free=1\n')
@example('  order 100000000000: 1 free blocks\n')
@example('    Base Addr=' + HUGE_NUMBER + ', order=22, size=1, free=1\n')
def test_v3_mem_parses_or_says_why(text):
    zone = only_v3vee_error(proc.parse_mem, text)
    if zone is not None:
        tracemalloc.start()
        try:
            largest = proc.largest_free_block(zone)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert largest is None or largest < 2 ** 64
        assert peak < 1 << 20
        assert all(0 <= p.order < 64 and p.size >= 0 and p.free >= 0 for p in zone['pools'])


# Round trip: the simulator renders /proc/v3vee exactly as the kernel does (spec 2.1-2.4).

class _FakeSim(object):
    """What the simulator's /proc renderers read: the module's VM table and the host."""

    def __init__(self, vms, host=None, runtime_block=134217728):
        self.module = {'vms': vms, 'runtime_block': runtime_block}
        self.host = host

    def klog(self, *args, **kwargs):
        pass


# Names validate_name accepts: any printable text up to 127 bytes without a comma or a leading '-'.
accepted_names = st.text(st.characters(codec='utf-8', exclude_categories=('Cc', 'Cs')), min_size=1, max_size=40) \
    .filter(lambda n: ',' not in n and not n.startswith('-') and len(n.encode('utf-8')) <= 127)


@st.composite
def sim_vms(draw):
    slots = draw(st.lists(st.integers(0, proc.MAX_VMS - 1), unique=True, max_size=6))
    vms = {}
    for slot in slots:
        mem = draw(st.integers(1, 4096)) << 20
        cores = draw(st.integers(1, 4))
        vms[str(slot)] = {
            'name': draw(accepted_names), 'state': draw(st.sampled_from(sorted(v3sim.STATE_NAMES))),
            'mem_bytes': mem, 'region_size': 128 << 20,
            'regions': [(0x108000000 + i * (128 << 20), 0) for i in range(-(-mem // (128 << 20)))],
            'vcores': [{'state': 'stopped', 'pcore': i, 'cpu_mode': 'real', 'mem_mode': 'physical',
                        'paging': 'shadow', 'exits': 0, 'rip': 0xfff0} for i in range(cores)],
        }
    return vms


@given(sim_vms())
def test_simulated_v3_guests_and_details_parse_back(vms):
    fake = _FakeSim(vms)
    guests = proc.parse_guests(v3sim.render_guests(fake))
    assert [(e.index, e.name, e.state, e.mem_bytes, e.vcores) for e in guests] == [
        (int(slot), vm['name'], v3sim.STATE_NAMES[vm['state']], vm['mem_bytes'], len(vm['vcores']))
        for slot, vm in sorted(vms.items(), key=lambda item: int(item[0]))]
    details = proc.parse_guests_details(v3sim.render_details(fake))
    assert sorted(details) == sorted(int(slot) for slot in vms)
    for slot, vm in vms.items():
        got = details[int(slot)]
        assert got['name'] == vm['name']
        assert [c['vcore'] for c in got['vcores']] == list(range(len(vm['vcores'])))
        assert [r['hpa_start'] for r in got['memory_regions']] == [hpa for hpa, _node in vm['regions']]


@pytest.fixture(scope='module')
def sim(tmp_path_factory):
    return make_sim(tmp_path_factory.mktemp('names') / 'host', blocks=2)


@given(st.one_of(accepted_names, st.tuples(st.integers(120, 126), st.sampled_from(['\xe9', '\u20ac', '\U0001f600']))
                 .map(lambda t: 'x' * t[0] + t[1]).filter(lambda n: len(n.encode('utf-8')) <= 127)))
@example('x' * 125 + '\xe9')  # 127 bytes: the kernel's strncpy keeps it whole
def test_name_validated_is_the_name_the_simulated_kernel_shows(sim, name):
    # The simulated kernel cuts names at 127 bytes as v3_create's strncpy does (gotcha 9).
    validate_name(name)
    out = sim.tool('v3_create', '-b', sim.xml['small'], name)
    slot = int(out.rsplit('/dev/v3-vm', 1)[1])
    try:
        snap = proc.ProcReader(sim.settings.proc_dir).snapshot(details=True)
        assert snap.by_slot(slot).name == name
        assert snap.details[slot]['name'] == name
    finally:
        sim.tool('v3_free', str(slot))


@given(st.integers(1, 8), st.integers(1, 64), st.integers(12, 30), st.integers(12, 30))
def test_simulated_v3_info_parses_back(nodes, cpus, compiled_order, runtime_order):
    host = {'nodes': nodes, 'cpus': cpus, 'compiled_block_size': 1 << compiled_order}
    info = proc.parse_info(v3sim.render_info(_FakeSim({}, host, runtime_block=1 << runtime_order)))
    assert (info['nodes'], info['cpus'], info['compiled_block_size'], info['runtime_block_size']) == (
        nodes, cpus, 1 << compiled_order, 1 << runtime_order)
    assert sorted(info['cpu_to_node']) == list(range(cpus))


@given(st.integers(13, 30).flatmap(lambda top: st.tuples(st.just(top), st.lists(
    st.tuples(st.integers(0, 2 ** 20), st.integers(12, top)), max_size=5, unique_by=lambda p: p[0]))))
def test_simulated_v3_mem_parses_back(zone_shape):
    max_order, shapes = zone_shape
    # Pools a whole max-order block apart, each entirely free (one free block of its own order).
    pools = [(number << max_order, order) for number, order in shapes]
    free = dict((str(o), []) for o in range(12, max_order + 1))
    for base, order in pools:
        free[str(order)].append(base)
    zone = {'max_order': max_order, 'pools': [{'base': base, 'order': order} for base, order in pools], 'free': free}
    parsed = proc.parse_mem(v3sim.render_mem(zone))
    assert parsed['max_order'] == max_order
    assert [(p.base, p.order, p.size) for p in parsed['pools']] == sorted((b, o, 1 << o) for b, o in pools)


# Kernel log lines (kmsg.parse_line): any line of any log, also one a local user wrote with
# `logger -t kernel` into /var/log/messages.

KMSG_PIECES = ['palacios (pcore ', '0', '3', ' vm ', 'web 1', ' vcore ', ')', ': ', 'main.c(123)', '(', ' ',
               '[   12.345678] ', '<6>', 'Nov 21 05:40:00 host kernel: ', '2026-11-21T05:40:00.123456+00:00 h kernel: ',
               '[Fri Nov 21 05:40:00 2026] ', 'READ GUEST', '\r']


@settings(deadline=500)
@given(hostile_text(KMSG_PIECES))
@example('palacios (pcore ' + HUGE_NUMBER + '): x')
@example('palacios (pcore 0 vm a vcore ' + HUGE_NUMBER + '): x')
@example('[' + HUGE_NUMBER + '.1] palacios (pcore 0): x')
def test_kernel_log_line_parses_or_is_not_palacios(line):
    parsed = kmsg.parse_line(line)
    if parsed is not None:
        assert isinstance(parsed['pcore'], int) and isinstance(parsed['message'], str)
        assert kmsg.matcher(parsed['vm'])(line)


@settings(deadline=2000)
@given(st.sampled_from(['palacios (pcore 0 vm ', 'palacios (pcore 0 vm ) ) ', ')(1)' * 3]),
       st.sampled_from(['a', ') ', ' vcore 1', '(1)', ': ', ')a(1)']), st.integers(1000, 20000))
def test_kernel_log_line_of_repeated_pieces_takes_linear_time(head, piece, count):
    # A backtracking regular expression would take seconds (or forever) here; the deadline says.
    kmsg.parse_line(head + piece * count)


@given(st.lists(st.binary(max_size=200), max_size=40), st.integers(1, 10), st.integers(1, 64))
def test_kernel_log_file_tail_reads_any_bytes(chunks, count, block):
    with tempfile.NamedTemporaryFile() as handle:
        handle.write(b'\n'.join(chunk + (b'palacios (pcore 1): m' if i % 3 else b'') for i, chunk in enumerate(chunks)))
        handle.flush()
        lines, _more = kmsg.tail_file(handle.name, count, kmsg.matcher(), block=block)
    assert len(lines) <= count
    assert all(kmsg.parse_line(line) is not None for line in lines)


# The GUI file (virtual_machines_list.txt, spec 6.2)

GUI_PIECES = [b'web1', b',', b'/v3/a.xml', b'/dev/v3-vm', b'0', b'2', b'\n', b'\r\n', b'\xff', b'\xc3', b'\xe2\x80\xa8',
              b'\x00', b' ', b'\t', b'-x']


@given(st.lists(st.one_of(st.sampled_from(GUI_PIECES), st.binary(max_size=6)), max_size=60).map(b''.join))
def test_gui_file_parses_every_line_or_says_why(data):
    lines, bad = guifile.parse(data)
    numbers = sorted([line.line for line in lines] + [b['line'] for b in bad])
    expected = data.split(b'\n')
    if expected and expected[-1] == b'':
        expected.pop()
    assert numbers == list(range(1, len(expected) + 1)), 'every line is either imported or reported'
    assert all(b['reason'] for b in bad)
    for line in lines:
        validate_name(line.name)
        assert not any(guifile.field_problem(f, getattr(line, f)) for f in ('config', 'image'))


gui_paths = st.text(st.characters(codec='utf-8', exclude_categories=('Cc', 'Cs')), max_size=30) \
    .filter(lambda p: ',' not in p).map(lambda p: '/' + p)


@given(st.lists(st.tuples(accepted_names, gui_paths, st.one_of(st.just(''), st.integers(0, 31).map('/dev/v3-vm{}'.format)),
                          st.sampled_from('012'), gui_paths), max_size=8, unique_by=lambda e: e[0]))
def test_gui_file_written_parses_back(entries):
    assume(all(name.strip() for name, _c, _d, _s, _i in entries))
    rows = [guifile.GuiLine(None, *entry) for entry in entries]
    lines, bad = guifile.parse(guifile.render(rows))
    assert bad == []
    assert [tuple(line)[1:] for line in lines] == entries


# Host settings (host.conf): KEY=value lines, parsed, never sourced.

@given(st.lists(st.one_of(st.sampled_from([b'V3VEE_PROC_DIR', b'=', b'export ', b'"', b"'", b' #', b'#', b'\n',
                                           b'/proc/v3vee', b'\xff\xfe', b'\xc3(', b'$(reboot)', b'\x00']),
                          st.binary(max_size=6)), max_size=40).map(b''.join))
def test_host_settings_file_parses_any_bytes(data):
    with tempfile.NamedTemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        values = only_v3vee_error(lambda path: read_host_conf(path, required=True), handle.name)
    if values is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())
        # Undecodable bytes stay the same bytes (a path in the file must name that path).
        assert all(os.fsencode(v) in data for v in values.values() if v)


# $PALACIOS_DIR/.v3offlinedmem (v3_mem's record of hot-removed memory) and Linux's memory blocks
# (<sys_dir>/devices/system/memory), which v3vee_memory reads to plan hot-remove.

@given(st.lists(st.one_of(st.sampled_from([b'8000000', b'\t', b'8000000\n', b' ', b'\n', b'f' * 5000, b'0x10',
                                           b'\xff', b'-1', b'\xd9\xa3']), st.binary(max_size=4)), max_size=30)
       .map(b''.join))
@example(b'%s\t8000000\n' % (b'f' * 5000))  # once a number too long to print in the leak message
@example(b'\xff\t1\n')                      # once a UnicodeDecodeError reading the file
def test_offline_memory_record_parses_any_bytes(data):
    with tempfile.TemporaryDirectory() as palacios_dir:
        with open(os.path.join(palacios_dir, memory.OFFLINE_FILE), 'wb') as handle:
            handle.write(data)
        ranges = memory.read_offline_file(palacios_dir)
    assert all(0 <= base < 2 ** 64 and 0 <= length < 2 ** 64 for base, length in ranges)
    assert memory.leak_remedy(ranges, palacios_dir)


sys_names = st.one_of(st.integers(0, 40).map('memory{}'.format), st.sampled_from(['memory\xb2', 'memory', 'memoryx',
                                                                                 'memory' + '9' * 200, 'power']))


@settings(deadline=5000)
@given(st.sampled_from(['8000000', '0', 'zz', 'f' * 40, '\xff']), st.dictionaries(
    sys_names, st.tuples(st.sampled_from(['online', 'offline', '\xff']), st.sampled_from(['0', '1', '']),
                         st.sampled_from(['node0', 'node1', 'node\xb2', 'nodex', 'node' + '9' * 50])), max_size=6))
@example('8000000', {'memory\xb2': ('online', '1', 'node0')})  # once int('\xb2'): ValueError
def test_linux_memory_blocks_read_from_any_tree(block_size, blocks):
    with tempfile.TemporaryDirectory() as sys_dir:
        base = os.path.join(sys_dir, 'devices', 'system', 'memory')
        os.makedirs(base)
        with open(os.path.join(base, 'block_size_bytes'), 'w', encoding='utf-8', errors='surrogateescape') as handle:
            handle.write(block_size)
        for name, (state, removable, node) in blocks.items():
            os.makedirs(os.path.join(base, name, node))
            for field, value in (('state', state), ('removable', removable)):
                with open(os.path.join(base, name, field), 'w', encoding='utf-8') as handle:
                    handle.write(value)
        sysmem = memory.read_memory_blocks(sys_dir)
    if sysmem is not None:
        assert 0 < sysmem['block_size'] < 2 ** 64
        assert all(isinstance(number, int) and isinstance(node, int) for number, node, _on, _rm in sysmem['blocks'])


# The whole read path: v3vee_facts on a /proc/v3vee tree of hostile bytes never fails (what does
# not parse is reported in `problems`), and what it shows reaches the status page escaped.

proc_bytes = st.lists(st.one_of(st.sampled_from([p.encode('utf-8', 'surrogatepass') for p in GUEST_PIECES + DETAIL_PIECES]),
                                st.binary(max_size=6)), max_size=30).map(b''.join)


@settings(deadline=5000)
@given(st.sampled_from([GOOD_INFO.encode(), GOOD_INFO.replace('\t1\n', '\t0\n').encode(), b'\xff']),
       proc_bytes, proc_bytes, st.binary(max_size=40))
def test_facts_of_a_hostile_proc_tree_report_problems_never_fail(info, guests, details, mem):
    with tempfile.TemporaryDirectory() as root:
        proc_dir = os.path.join(root, 'v3vee')
        os.mkdir(proc_dir)
        for name, data in (('v3-info', info), ('v3-guests', guests), ('v3-guests-details', details), ('v3-mem0', mem)):
            with open(os.path.join(proc_dir, name), 'wb') as handle:
                handle.write(data)
        settings_ = Settings(proc_dir=proc_dir, dev_dir=root, inventory_path=os.path.join(root, 'inventory.db'))
        got = facts.gather(settings_, runner=None, subsets=('host', 'memory', 'vms'), vm_details=True)
    assert all(isinstance(problem, str) and problem for problem in got['problems'])
    for vm in got['vms']:
        assert '<' not in status_page._esc(vm['name'])


_ENTITY = re.compile(r'&(amp|lt|gt|quot|#x27);')


@given(st.text(ANY_CHAR, max_size=40))
def test_status_page_text_is_escaped_whatever_the_host_shows(text):
    html = status_page._esc(text)
    html.encode('utf-8')  # no lone surrogates reach the page
    assert not re.search('[<>"\']', html) and '&' not in _ENTITY.sub('', html)
    assert not status_page._CONTROL.search(html)
