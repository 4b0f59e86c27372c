# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Palacios GUI's inventory file, virtual_machines_list.txt: pure parser and writer.

Format (interface spec 6.2): one VM per line, `name,config,dev,state,image`, `\\n`-terminated,
no header, no quoting; state 0 = stopped, 1 = paused, 2 = running (the GUI's own record).
The GUI crashes on a blank or short line and silently corrupts on a comma inside a field, so
the parser reports every such line with its number instead of guessing.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import stat
import tempfile
import unicodedata
from collections import namedtuple

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import validate_name

FILE_NAME = 'virtual_machines_list.txt'  # defs.h FILE_VM_LIST
FIELDS = ('name', 'config', 'dev', 'state', 'image')
# GUI VmInfo states. ERROR (and anything else the kernel shows) is written as stopped: the GUI
# knows no other state, and a stopped VM is what it offers to start (which the kernel refuses).
GUI_STATE = {'stopped': '0', 'paused': '1', 'running': '2'}
_DEV_RE = re.compile(r'^/dev/v3-vm(\d+)$')

GuiLine = namedtuple('GuiLine', 'line name config dev state image')


def gui_state(state):
    """Kernel or desired state -> the GUI's digit."""
    return GUI_STATE.get(state, '0')


def desired_state(dev, digit):
    """The desired state a GUI line stands for. An empty dev with state 0 is a VM the GUI's
    "New VM" wizard added and nobody activated: inactive. Otherwise the digit is what the VM was
    doing when the GUI last wrote the line, which is what a recovery brings it back to."""
    if digit == '0' and not dev:
        return 'inactive'
    return {'0': 'stopped', '1': 'paused', '2': 'running'}[digit]


def slot_of(dev):
    match = _DEV_RE.match(dev or '')
    return int(match.group(1)) if match else None


def _bad_char(text):
    for char in text:
        if unicodedata.category(char) in ('Cc', 'Cs'):
            return char
    return None


def field_problem(name, value):
    """Why `value` cannot be written into the GUI file's `name` field, or None."""
    if ',' in value:
        return '%s %r contains a comma (the GUI file has no quoting)' % (name, value)
    char = _bad_char(value)
    if char is not None:
        return '%s %r contains the control character %r' % (name, value, char)
    return None


def _line_problem(fields):
    if len(fields) < len(FIELDS):
        return 'short line: %d field(s), the GUI needs 5 (name,config,dev,state,image); the GUI crashes on it' \
            % len(fields)
    if len(fields) > len(FIELDS):
        return '%d fields instead of 5: a comma inside a name or path (the GUI file has no quoting)' % len(fields)
    name, config, dev, state, image = fields
    try:
        validate_name(name)
    except V3veeError as err:
        return err.msg
    for field, value in (('config', config), ('image', image)):
        problem = field_problem(field, value)
        if problem:
            return problem
    if dev and slot_of(dev) is None:
        return 'dev %r is neither empty nor /dev/v3-vm<N>' % dev
    if state not in ('0', '1', '2'):
        return 'state %r is not 0 (stopped), 1 (paused) or 2 (running)' % state
    if not config and not image:
        return 'neither a config nor an image path'
    return None


def parse(data):
    """Parse the file's bytes. Returns (lines, bad): GuiLine list of the usable lines, and a list
    of {'line', 'text', 'reason'} for every line that is not (line numbers start at 1).

    Accepted as the GUI accepts them: CRLF line ends (Qt's readLine strips them) and a last line
    without its newline. Every line of a name that occurs more than once is bad: which one the
    GUI meant cannot be known, so none is guessed.
    """
    good, bad = [], []
    chunks = data.split(b'\n')
    if chunks and chunks[-1] == b'':
        chunks.pop()  # the newline that ends the last line
    for number, raw in enumerate(chunks, 1):
        if raw.endswith(b'\r'):
            raw = raw[:-1]
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError as exc:
            bad.append({'line': number, 'text': raw.decode('utf-8', 'replace'),
                        'reason': 'not valid UTF-8 (byte %d)' % (exc.start + 1)})
            continue
        if not text.strip():
            bad.append({'line': number, 'text': text, 'reason': 'blank line (the GUI crashes on it)'})
            continue
        fields = text.split(',')
        reason = _line_problem(fields)
        if reason:
            bad.append({'line': number, 'text': text, 'reason': reason})
            continue
        good.append(GuiLine(number, *fields))
    seen = {}
    for entry in good:
        seen.setdefault(entry.name, []).append(entry.line)
    lines = []
    for entry in good:
        numbers = seen[entry.name]
        if len(numbers) > 1:
            bad.append({'line': entry.line, 'text': format_line(entry),
                        'reason': 'duplicate name %r (lines %s); none of them is imported'
                                  % (entry.name, ', '.join('%d' % n for n in numbers))})
        else:
            lines.append(entry)
    bad.sort(key=lambda b: b['line'])
    return lines, bad


def format_line(entry):
    return ','.join((entry.name, entry.config, entry.dev, entry.state, entry.image))


def render(entries):
    """The file's bytes for GuiLine-like entries (the `line` field is ignored)."""
    return ''.join(format_line(e) + '\n' for e in entries).encode('utf-8')


def read(path):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if not os.path.exists(path):
            return None
        raise V3veeError('Cannot read the GUI inventory file %s: %s' % (path, exc))


def write_atomic(path, data, mode=0o644):
    """Replace `path` by `data` the way the GUI itself does (a temporary file in the same
    directory, then rename), so the GUI never reads a half-written file. An existing file keeps
    its mode and (when we may) its owner."""
    directory = os.path.dirname(path) or '.'
    try:
        current = os.stat(path)
    except OSError:
        current = None
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if current is not None:
            os.chmod(tmp, stat.S_IMODE(current.st_mode))
            if hasattr(os, 'geteuid') and os.geteuid() == 0:
                os.chown(tmp, current.st_uid, current.st_gid)
        else:
            os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
