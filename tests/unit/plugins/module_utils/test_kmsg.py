import os

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import kmsg
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import ToolTimeout

# The printk formats of linux_module/palacios.h and palacios-stubs.c palacios_print_scoped.
DMESG = [
    '[    0.000000] Linux version 3.19.8 (root@build) (gcc version 4.9.2)',
    '[   12.345678] palacios (pcore 0): intializing V3 Control device',
    '[   13.000001] palacios (pcore 1 vm web1): V3 --  Starting VM (1 cores)',
    '[   13.000002] palacios (pcore 1 vm web1 vcore 0): Starting virtual core 0 on logical core 1',
    '[   14.500000] palacios (pcore 0) main.c(277): Palacios Error: Too many VMs are currently running',
    '[   15.000000] e1000: eth0 NIC Link is Up',
    '[   16.250000] palacios (pcore 2 vm my db): Tried to stop VM in invalid runstate (3)',
]


@pytest.mark.parametrize('line, expected', [
    ('[   12.345678] palacios (pcore 0): hello world',
     {'pcore': 0, 'vm': None, 'vcore': None, 'location': None, 'message': 'hello world', 'uptime': 12.345678,
      'time': None, 'host': None}),
    ('[    3.000001] palacios (pcore 1 vm web 1): VM (web 1) started',
     {'pcore': 1, 'vm': 'web 1', 'vcore': None, 'location': None, 'message': 'VM (web 1) started',
      'uptime': 3.000001, 'time': None, 'host': None}),
    ('[    3.5] palacios (pcore 3 vm web1 vcore 2): exit',
     {'pcore': 3, 'vm': 'web1', 'vcore': 2, 'location': None, 'message': 'exit', 'uptime': 3.5, 'time': None,
      'host': None}),
    ('[    4.0] palacios (pcore 0) /usr/src/palacios/linux_module/main.c(123): No VM at index 7',
     {'pcore': 0, 'vm': None, 'vcore': None, 'location': '/usr/src/palacios/linux_module/main.c(123)',
      'message': 'No VM at index 7', 'uptime': 4.0, 'time': None, 'host': None}),
])
def test_parses_every_palacios_printk_prefix(line, expected):
    assert kmsg.parse_line(line) == expected


def test_parses_journal_short_precise_and_short():
    parsed = kmsg.parse_line('Nov 21 05:40:00.123456 host1 kernel: palacios (pcore 2 vm db): Tried to pause')
    assert (parsed['time'], parsed['host'], parsed['vm'], parsed['uptime']) == (
        'Nov 21 05:40:00.123456', 'host1', 'db', None)
    parsed = kmsg.parse_line('Nov  1 05:40:00 host1 kernel: palacios (pcore 0): x')
    assert (parsed['time'], parsed['message']) == ('Nov  1 05:40:00', 'x')


def test_parses_syslog_lines_with_the_kernel_stamp_and_iso_dates():
    parsed = kmsg.parse_line('Nov 21 05:40:00 h kernel: [  55.250000] palacios (pcore 1 vm a): m')
    assert (parsed['time'], parsed['uptime'], parsed['vm']) == ('Nov 21 05:40:00', 55.25, 'a')
    parsed = kmsg.parse_line('2026-11-21T05:40:00.123456+00:00 h kernel: palacios (pcore 0): m')
    assert parsed['time'] == '2026-11-21T05:40:00.123456+00:00'


def test_dmesg_ctime_and_level_prefixes():
    assert kmsg.parse_line('[Fri Nov 21 05:40:00 2026] palacios (pcore 0): m')['time'] == 'Fri Nov 21 05:40:00 2026'
    assert kmsg.parse_line('<6>[    1.5] palacios (pcore 0): m')['uptime'] == 1.5


@pytest.mark.parametrize('line', [
    '[   15.000000] e1000: eth0 NIC Link is Up',
    'Nov 21 05:40:00 host1 sudo: palacios (pcore 0): logged by a daemon, not the kernel',
    '[    1.0] v3vee: `x\' invalid for parameter `cpu_list\'',
    '',
])
def test_other_lines_are_not_palacios_messages(line):
    assert kmsg.parse_line(line) is None


def test_last_matching_keeps_order_and_bound():
    lines, more = kmsg.last_matching(DMESG, 2, kmsg.matcher())
    assert lines == DMESG[4:5] + DMESG[6:7] and more is True
    lines, more = kmsg.last_matching(DMESG, 50, kmsg.matcher())
    assert len(lines) == 5 and more is False


def test_vm_filter_takes_only_scoped_messages():
    lines = kmsg.last_matching(DMESG, 50, kmsg.matcher(vm='web1'))[0]
    assert lines == DMESG[2:4]
    lines = kmsg.last_matching(DMESG, 50, kmsg.matcher(vm='my db'))[0]
    assert lines == DMESG[6:7]


def test_exclude_drops_matching_messages():
    lines = ['[ 1.0] palacios (pcore 0): READ GUEST', '[ 2.0] palacios (pcore 0): real reason']
    assert kmsg.last_matching(lines, 5, kmsg.matcher(exclude=kmsg.DEFAULT_EXCLUDE))[0] == lines[1:]
    assert kmsg.last_matching(lines, 5, kmsg.matcher(exclude=()))[0] == lines


def _log(path, lines, end='\n'):
    path.write_bytes(('\n'.join(lines) + end).encode('utf-8'))
    return str(path)


@pytest.mark.parametrize('block', [7, 64, 65536])
def test_tail_file_reads_backwards_across_block_boundaries(tmp_path, block):
    path = _log(tmp_path / 'kmsg.log', DMESG)
    for count in (1, 3, 5, 10):
        lines, more = kmsg.tail_file(path, count, kmsg.matcher(), block=block)
        want, want_more = kmsg.last_matching(DMESG, count, kmsg.matcher())
        assert (lines, more) == (want, want_more)


def test_tail_file_handles_no_trailing_newline_and_empty_files(tmp_path):
    path = _log(tmp_path / 'a.log', DMESG, end='')
    assert kmsg.tail_file(path, 1, kmsg.matcher())[0] == DMESG[-1:]
    empty = _log(tmp_path / 'b.log', [], end='')
    assert kmsg.tail_file(empty, 5, kmsg.matcher()) == ([], False)


def test_tail_file_does_not_read_a_large_log_whole(tmp_path, monkeypatch):
    noise = ['[ %d.0] usb 1-1: new device' % i for i in range(200000)]
    path = _log(tmp_path / 'messages', noise + DMESG)
    size = os.path.getsize(path)
    lines = kmsg.tail_file(path, 3, kmsg.matcher())[0]
    assert lines == [DMESG[3], DMESG[4], DMESG[6]]
    # Bounded: a log without enough Palacios lines is read at most max_bytes back.
    lines, more = kmsg.tail_file(path, 50, kmsg.matcher(), max_bytes=65536)
    assert len(lines) == 5 and more is True and size > 65536 * 10


def test_tail_file_undecodable_bytes_do_not_break(tmp_path):
    path = tmp_path / 'k.log'
    path.write_bytes(b'[ 1.0] palacios (pcore 0 vm caf\xe9): created\n')
    (line,) = kmsg.tail_file(str(path), 5, kmsg.matcher())[0]
    assert kmsg.parse_line(line)['message'] == 'created'


class Runner(object):
    def __init__(self, results):
        self.results = results
        self.calls = []

    def __call__(self, argv, cwd=None, env_update=None):
        self.calls.append(argv)
        return self.results[os.path.basename(argv[0])]


def _which(available):
    return lambda name: '/usr/bin/' + name if name in available else None


def test_configured_kernel_log_is_the_only_source_even_before_it_exists(tmp_path):
    runner = Runner({})
    result = kmsg.collect(runner, kernel_log=str(tmp_path / 'kmsg.log'), which=_which(['journalctl', 'dmesg']))
    assert result['source'] == 'file' and result['lines'] == [] and runner.calls == []
    assert 'does not exist' in result['tried'][0] and result['error'] is None
    _log(tmp_path / 'kmsg.log', DMESG)
    result = kmsg.collect(runner, count=2, kernel_log=str(tmp_path / 'kmsg.log'))
    assert result['lines'] == [DMESG[4], DMESG[6]] and result['messages'][1]['vm'] == 'my db'
    assert result['truncated'] is True and result['path'] == str(tmp_path / 'kmsg.log')


def test_journal_first_bounded_and_without_a_shell():
    journal = 'Nov 21 05:40:00.1 h kernel: palacios (pcore 0): a\nNov 21 05:40:00.2 h kernel: other\n'
    runner = Runner({'journalctl': (0, journal, '')})
    result = kmsg.collect(runner, which=_which(['journalctl', 'dmesg']), syslog_files=())
    assert result['source'] == 'journal' and result['lines'] == ['Nov 21 05:40:00.1 h kernel: palacios (pcore 0): a']
    argv = runner.calls[0]
    assert argv[0] == '/usr/bin/journalctl' and '-k' in argv and argv[argv.index('-n') + 1] == str(kmsg.JOURNAL_SCAN_LINES)
    assert result['command'] == argv


def test_empty_or_failing_sources_fall_through_to_dmesg_then_files(tmp_path):
    runner = Runner({'journalctl': (0, '-- No entries --\n', ''),
                     'dmesg': (1, '', 'dmesg: read kernel buffer failed: Operation not permitted')})
    messages = _log(tmp_path / 'messages', ['Nov 21 05:40:00 h kernel: [ 1.0] palacios (pcore 0): m'])
    result = kmsg.collect(runner, which=_which(['journalctl', 'dmesg']),
                          syslog_files=(str(tmp_path / 'kern.log'), messages))
    assert result['source'] == 'file' and result['path'] == messages and len(result['lines']) == 1
    assert len(result['tried']) == 3 and 'Operation not permitted' in result['tried'][1]


def test_a_source_with_kernel_lines_but_no_palacios_ones_is_the_answer():
    runner = Runner({'dmesg': (0, '[ 1.0] e1000: up\n', '')})
    result = kmsg.collect(runner, which=_which(['dmesg']), syslog_files=())
    assert result['source'] == 'dmesg' and result['lines'] == [] and result['tried'] == ['journalctl not found']


def test_nothing_anywhere_is_not_an_error():
    result = kmsg.collect(Runner({}), which=_which([]), syslog_files=('/nonexistent/kern.log',))
    assert result['source'] is None and result['lines'] == [] and len(result['tried']) == 3


def test_explicit_source_uses_only_that_source(tmp_path):
    runner = Runner({'journalctl': (0, 'Nov 21 05:40:00 h kernel: palacios (pcore 0): j\n', ''),
                     'dmesg': (0, '[ 1.0] palacios (pcore 0): d\n', '')})
    assert kmsg.collect(runner, source='dmesg', which=_which(['journalctl', 'dmesg']))['source'] == 'dmesg'
    result = kmsg.collect(runner, source='journal', kernel_log=str(tmp_path / 'kmsg.log'),
                          which=_which(['journalctl', 'dmesg']))
    assert result['source'] == 'journal'


def test_vm_filter_is_applied_to_every_source(tmp_path):
    path = _log(tmp_path / 'kmsg.log', DMESG)
    result = kmsg.collect(Runner({}), vm='web1', kernel_log=path)
    assert [m['vcore'] for m in result['messages']] == [None, 0] and result['vm'] == 'web1'


def test_a_hung_journalctl_is_killed_and_dmesg_answers():
    class Hanging(Runner):
        def __call__(self, argv, cwd=None, env_update=None):
            if argv[0].endswith('journalctl'):
                self.calls.append(argv)
                raise ToolTimeout(argv, 60, 62.0, 'SIGKILL', '', '', 4242)
            return Runner.__call__(self, argv, cwd=cwd, env_update=env_update)
    runner = Hanging({'dmesg': (0, '[ 1.0] palacios (pcore 0): d\n', '')})
    result = kmsg.collect(runner, which=_which(['journalctl', 'dmesg']), syslog_files=())
    assert result['source'] == 'dmesg' and len(runner.calls) == 2
    assert 'journalctl did not finish within its deadline of 60s' in result['tried'][0]
