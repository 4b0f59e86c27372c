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

import binascii
import errno
import os
import re
import stat
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


def _symlink_error(path):
    return V3veeError('The GUI inventory file %s is a symlink; it is neither followed nor replaced (whoever can '
                      'change the link could make this run read or overwrite another file). Name the real file '
                      'instead.' % path)


def read(path):
    """The file's bytes, or None when it does not exist. A symlink is refused, not followed: the
    modules run as root and return what they read (diff, bad lines)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP:
            raise _symlink_error(path)
        raise V3veeError('Cannot read the GUI inventory file %s: %s' % (path, exc))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise V3veeError('The GUI inventory file %s is not a regular file.' % path)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def write_atomic(path, data, mode=0o644):
    """Replace `path` by `data` the way the GUI itself does (a temporary file in the same
    directory, then rename), so the GUI never reads a half-written file. An existing file keeps
    its mode and (when we may) its owner.

    The directory may belong to another user (the GUI's user): the temporary file is created
    with O_EXCL|O_NOFOLLOW and then only used through its descriptor, and every name is looked up
    relative to the directory's descriptor, so nothing planted there is followed. On any failure
    (read-only, full, ...) the temporary file is removed and `path` is left as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise V3veeError('Cannot write the GUI inventory file %s: %s.' % (path, exc.strerror or exc))
    tmp = None
    try:
        try:
            current = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            current = None
        if current is not None and stat.S_ISLNK(current.st_mode):
            raise _symlink_error(path)
        if current is not None and not stat.S_ISREG(current.st_mode):
            raise V3veeError('The GUI inventory file %s is not a regular file; it is left as it is.' % path)
        while True:
            tmp = '.%s.%s.tmp' % (base, binascii.hexlify(os.urandom(6)).decode('ascii'))
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
                break
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    tmp = None
                    raise
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if current is not None:
                os.fchmod(fd, stat.S_IMODE(current.st_mode))
                if os.geteuid() == 0:
                    os.fchown(fd, current.st_uid, current.st_gid)
            else:
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, base, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        tmp = None
        try:
            os.fsync(dir_fd)
        except OSError:
            pass  # the file is replaced already; only its durability is the file system's now
    except OSError as exc:
        raise V3veeError('Cannot write the GUI inventory file %s: %s. It is left as it was.'
                         % (path, exc.strerror or exc))
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
        os.close(dir_fd)
