# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Palacios kernel messages: the GUI's telemetry pane (it tailed /var/log/messages).

Palacios only ever explains a refusal in the kernel log (interface spec section 0). Its printk
prefixes (linux_module/palacios.h, palacios-stubs.c palacios_print_scoped):

    palacios (pcore N): msg                  module and unscoped core messages
    palacios (pcore N) main.c(123): msg      module ERROR() messages carry file(line)
    palacios (pcore N vm NAME): msg          VM-scoped core messages
    palacios (pcore N vm NAME vcore M): msg  vcore-scoped core messages

The parsers here are pure; `collect` picks a source and reads it without a shell and without
reading a large log file whole.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError, find_executable, untrusted

MARKER = 'palacios (pcore '
_MARKER_BYTES = MARKER.encode('ascii')

# Numbers are ASCII and bounded (\d takes other scripts' digits; int() refuses 4300+ digits): any
# user can put a line into the syslog files with `logger -t kernel`.
# Non-greedy VM name: names may hold spaces (and even parentheses); the name ends at the first
# ")" that is followed by ": " or by a file(line) and ": ".
_PREFIX_RE = re.compile(
    r'palacios \(pcore (?P<pcore>[0-9]{1,9})'
    r'(?: vm (?P<vm>.*?)(?: vcore (?P<vcore>[0-9]{1,9}))?)?\)'
    r'(?: (?P<location>[^\s()]+\([0-9]{1,9}\)))?'
    r': ?(?P<message>.*)$')
# dmesg: "[   12.345678] msg" (optionally "<6>" level and a "[  T123]" caller id, newer kernels).
_UPTIME_RE = re.compile(r'^(?:<[0-9]{1,3}>)?\[\s*(?P<uptime>[0-9]{1,12}\.[0-9]{1,9})\](?:\[\s*[TC][0-9]{1,9}\])?\s?(?P<rest>.*)$')
# dmesg -T / --ctime: "[Fri Nov 21 05:40:00 2026] msg"
_CTIME_RE = re.compile(r'^\[(?P<time>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]\s?(?P<rest>.*)$')
# syslog (/var/log/messages, kern.log) and journalctl -o short / short-precise / short-iso(-precise):
# "Nov 21 05:40:00[.123456] host kernel: msg", "2026-11-21T05:40:00.123456+00:00 host kernel: msg".
_SYSLOG_RE = re.compile(
    r'^(?P<time>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?'
    r'|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)'
    r' (?P<host>\S+) (?P<tag>[^\s:\[]+)(?:\[\d+\])?: (?P<rest>.*)$')

SOURCES = ('auto', 'file', 'journal', 'dmesg')
# Real Palacios logs "READ GUEST" on every read of v3-guests (spec 2.1): every v3vee_vm poll
# and every facts run would otherwise fill the telemetry with our own reads.
DEFAULT_EXCLUDE = ('^READ GUEST',)
SYSLOG_FILES = ('/var/log/kern.log', '/var/log/messages')
COMMAND_DIRS = ('/usr/bin', '/bin', '/usr/sbin', '/sbin')
# Bounds: how far back a source is searched for Palacios lines.
JOURNAL_SCAN_LINES = 10000
FILE_SCAN_BYTES = 16 * 1024 * 1024
_BLOCK = 65536


def parse_line(line):
    """One log line -> dict (pcore, vm, vcore, location, message, uptime, time, host), or None
    when it is not a Palacios kernel message."""
    if MARKER not in line:
        return None
    line = line.rstrip('\r\n')
    uptime = time = host = None
    rest = line
    match = _SYSLOG_RE.match(rest)
    if match:
        if match.group('tag') != 'kernel':
            return None  # a daemon that logs the text is not the kernel
        time, host, rest = match.group('time'), match.group('host'), match.group('rest')
    match = _UPTIME_RE.match(rest)
    if match:
        uptime, rest = float(match.group('uptime')), match.group('rest')
    else:
        match = _CTIME_RE.match(rest)
        if match:
            time, rest = match.group('time'), match.group('rest')
    match = _PREFIX_RE.match(rest)
    if not match:
        return None
    vcore = match.group('vcore')
    return {
        'pcore': int(match.group('pcore')),
        'vm': match.group('vm'),
        'vcore': int(vcore) if vcore is not None else None,
        'location': match.group('location'),
        'message': match.group('message'),
        'uptime': uptime,
        'time': time,
        'host': host,
    }


def matcher(vm=None, exclude=()):
    """Predicate on a log line: a Palacios message (about VM `vm` when given) whose text matches
    none of the `exclude` regular expressions."""
    patterns = [re.compile(pattern) for pattern in exclude or ()]

    def match(line):
        parsed = parse_line(line)
        if parsed is None or (vm is not None and parsed['vm'] != vm):
            return False
        return not any(pattern.search(parsed['message']) for pattern in patterns)
    return match


def last_matching(lines, count, match):
    """The last `count` lines that match, oldest first, and whether older matching lines were left out."""
    found = []
    for line in reversed(lines):
        if match(line):
            found.append(line)
            if len(found) > count:
                break
    more = len(found) > count
    return list(reversed(found[:count])), more


def tail_file(path, count, match, max_bytes=FILE_SCAN_BYTES, block=_BLOCK):
    """Like last_matching for a file, reading it backwards in blocks from the end: a log of any
    size costs only what is needed to find `count` lines, at most `max_bytes`.

    Returns (lines oldest first, more) where `more` says older matching lines were left out
    (or could not be looked at within max_bytes).
    """
    found = []
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        pos = handle.tell()
        carry = b''
        scanned = 0
        while pos > 0 and len(found) <= count and scanned < max_bytes:
            size = min(block, pos)
            pos -= size
            handle.seek(pos)
            chunk = handle.read(size)
            scanned += len(chunk)
            parts = (chunk + carry).split(b'\n')
            carry = parts[0]  # may continue in the previous block
            _take(parts[1:], count, match, found)
        if pos == 0 and carry and len(found) <= count:
            _take([carry], count, match, found)
        more = len(found) > count or (pos > 0 and len(found) < count)
    return list(reversed(found[:count])), more


def _take(raw_lines, count, match, found):
    for raw in reversed(raw_lines):
        if len(found) > count:
            return
        if _MARKER_BYTES in raw:
            line = raw.decode('utf-8', 'replace').rstrip('\r')
            if match(line):
                found.append(line)


def find_command(name, path=None):
    """Where `name` is on PATH (or the usual system directories); None if nowhere. As root, a
    command another user could change is passed over (it would run their code as root)."""
    dirs = [d for d in (path if path is not None else os.environ.get('PATH', '')).split(os.pathsep) if d]
    for directory in dirs + [d for d in COMMAND_DIRS if d not in dirs]:
        found = find_executable(name, [directory])
        if found and (os.geteuid() != 0 or untrusted(found) is None):
            return found
    return None


def _result(kind, lines, more, path=None, command=None):
    return {'source': kind, 'path': path, 'command': command, 'lines': lines,
            'messages': [parse_line(line) for line in lines], 'truncated': more}


def _from_file(path, count, match):
    """(result, None) or (None, why the file cannot be read)."""
    try:
        lines, more = tail_file(path, count, match)
    except (IOError, OSError) as exc:
        return None, '%s: %s' % (path, exc.strerror or exc)
    return _result('file', lines, more, path=path), None


def _from_command(kind, argv, runner, count, match):
    """(result, None) or (None, why the source is unusable)."""
    try:
        rc, out, err = runner(argv, env_update={'LC_ALL': 'C'})
    except V3veeError as exc:  # it hung and was killed (tools.ToolTimeout): try the next source
        return None, str(exc)
    if rc != 0:
        return None, '%s exited %s: %s' % (os.path.basename(argv[0]), rc, (err or out).strip()[:200])
    all_lines = [line for line in out.splitlines() if line and not line.startswith('-- ')]
    if not all_lines:
        # No kernel line at all (not even a non-Palacios one): this source does not see the
        # kernel log here (a container's journal, say); another may.
        return None, '%s shows no kernel messages' % os.path.basename(argv[0])
    lines, more = last_matching(all_lines, count, match)
    return _result(kind, lines, more, command=argv), None


def _candidates(source, kernel_log, syslog_files):
    """(kind, what) in the order they are tried."""
    if source in ('auto', 'file') and kernel_log:
        # The configured log (the simulator's kmsg.log) is the answer, even before it exists:
        # falling back would show the real host's kernel instead.
        return [('configured', kernel_log)]
    out = []
    if source in ('auto', 'journal'):
        out.append(('journal', 'journalctl'))
    if source in ('auto', 'dmesg'):
        out.append(('dmesg', 'dmesg'))
    if source in ('auto', 'file'):
        out.extend(('file', path) for path in syslog_files)
    return out


def collect(runner, count=50, vm=None, source='auto', kernel_log=None, exclude=DEFAULT_EXCLUDE,
            which=find_command, syslog_files=SYSLOG_FILES):
    """The latest `count` Palacios kernel messages (newest last), optionally only VM `vm`'s.

    Sources, in order: the configured kernel log file (`kernel_log`, e.g. the simulator's
    kmsg.log; when set it is the only source), the journal (journalctl -k: this boot, the last
    JOURNAL_SCAN_LINES kernel messages), dmesg, /var/log/kern.log, /var/log/messages (each
    read backwards, at most FILE_SCAN_BYTES). `source` limits the search to the files
    ('file'), the journal or dmesg; messages matching an `exclude` regular expression are
    skipped. Nothing found is not an error: `source` is None and `tried` says why; `error` is
    set only when the configured log exists but cannot be read. `runner(argv, env_update=...)` -> (rc, stdout, stderr), never a shell.
    """
    match = matcher(vm, exclude)
    tried = []
    result = None
    error = None
    for kind, what in _candidates(source, kernel_log, syslog_files):
        if kind == 'configured':
            if os.path.exists(what):
                result, why = _from_file(what, count, match)
                error = 'Cannot read the kernel log %s' % why if why else None
            else:
                result, why = _result('file', [], False, path=what), '%s does not exist (yet)' % what
            if result is None:
                result = _result('file', [], False, path=what)
        elif kind == 'file':
            if not os.path.isfile(what):
                tried.append('%s does not exist' % what)
                continue
            result, why = _from_file(what, count, match)
        else:
            command = which(what)
            if command is None:
                tried.append('%s not found' % what)
                continue
            argv = [command]
            if kind == 'journal':
                argv += ['-k', '-q', '-o', 'short-precise', '--no-pager', '-n', str(JOURNAL_SCAN_LINES)]
            result, why = _from_command(kind, argv, runner, count, match)
        if why:
            tried.append(why)
        if result is not None:
            break
    if result is None:
        result = _result(None, [], False)
    result['vm'] = vm
    result['exclude'] = list(exclude or ())
    result['tried'] = tried
    result['error'] = error
    return result
