# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Settings, the one error type and the common argument spec shared by every module."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

HOST_CONF_DEFAULT = '/etc/v3vee/host.conf'
DEFAULT_PROC_DIR = '/proc/v3vee'
DEFAULT_DEV_DIR = '/dev'
DEFAULT_INVENTORY_PATH = '/var/lib/v3vee/inventory.db'
DEFAULT_LOCK_TIMEOUT = 60
# Where the tools usually live when they are not on PATH: `make install`-style prefixes and
# the Palacios source tree's linux_usr (the tools are built in place there).
TOOL_SEARCH_DIRS = ('/usr/local/bin', '/usr/bin', '/opt/palacios/linux_usr', '/usr/local/palacios/linux_usr')

# option name -> (environment variable, host.conf key, built-in default)
SETTINGS = {
    'tools_dir': ('V3VEE_TOOLS_DIR', 'V3VEE_TOOLS_DIR', None),
    'proc_dir': ('V3VEE_PROC_DIR', 'V3VEE_PROC_DIR', DEFAULT_PROC_DIR),
    'dev_dir': ('V3VEE_DEV_DIR', 'V3VEE_DEV_DIR', DEFAULT_DEV_DIR),
    'inventory_path': ('V3VEE_INVENTORY_PATH', 'V3VEE_INVENTORY_PATH', DEFAULT_INVENTORY_PATH),
    'palacios_dir': ('PALACIOS_DIR', 'PALACIOS_DIR', None),
    'kernel_log': ('V3VEE_KERNEL_LOG', 'V3VEE_KERNEL_LOG', None),
    'backend': ('V3VEE_BACKEND', 'V3VEE_BACKEND', 'palacios'),
    # Where Linux shows its memory blocks (<sys_dir>/devices/system/memory), which hot-remove offlines.
    'sys_dir': ('V3VEE_SYS_DIR', 'V3VEE_SYS_DIR', '/sys'),
}


def find_executable(name, dirs):
    """The first executable file `name` in `dirs`, or None. Relative directories (an empty or `.`
    PATH entry is the current directory, wherever the module happens to run) are never searched."""
    for directory in dirs:
        if not os.path.isabs(directory):
            continue
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _writable_by_others(path, info):
    if info.st_uid != 0:
        return '%s is owned by uid %d' % (path, info.st_uid)
    mode = stat.S_IMODE(info.st_mode)
    # A sticky directory (/tmp) lets nobody replace an entry they do not own, and every entry on the
    # way is checked to be root's. Group root's members are administrators.
    if (stat.S_ISDIR(info.st_mode) and mode & stat.S_ISVTX) or stat.S_ISLNK(info.st_mode):
        return None
    if mode & 0o002:
        return '%s is writable by every user (mode %04o)' % (path, mode)
    if mode & 0o020 and info.st_gid != 0:
        return '%s is writable by group %d (mode %04o)' % (path, info.st_gid, mode)
    return None


def untrusted(path):
    """Why a user other than root could change what running `path` runs, or None: the file, and
    every directory and symlink on the way from / to it (symlinks followed), must be root's and
    writable by nobody else. For modules running as root: such a tool would run that user's code as root."""
    parts = [p for p in path.split(os.sep) if p][::-1]
    current = os.sep
    links = 0
    try:
        problem = _writable_by_others(current, os.lstat(current))
        while parts and problem is None:
            part = parts.pop()
            if part in ('', '.'):
                continue
            if part == '..':
                current = os.path.dirname(current)
                continue
            following = os.path.join(current, part)
            info = os.lstat(following)
            problem = _writable_by_others(following, info)
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if links > 40:
                    return '%s: too many levels of symlinks' % path
                target = os.readlink(following)
                if os.path.isabs(target):
                    current = os.sep
                parts.extend([p for p in target.split(os.sep) if p][::-1])
            else:
                current = following
    except OSError as exc:
        return 'cannot inspect %s: %s' % (path, exc.strerror or exc)
    return problem


class V3veeError(Exception):
    """Every failure the engine reports: what failed, the command and its output, what was seen.

    Modules turn it into fail_json(**err.fail_kwargs()); nothing else is raised on purpose.
    """

    def __init__(self, msg, tool=None, argv=None, rc=None, stdout=None, stderr=None,
                 observed=None, hint=None):
        super(V3veeError, self).__init__(msg)
        self.msg = msg
        self.tool = tool
        self.argv = list(argv) if argv is not None else None
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.observed = observed
        self.hint = hint

    def __str__(self):
        text = self.msg
        if self.hint:
            text += ' ' + self.hint
        return text

    def fail_kwargs(self):
        out = {'msg': str(self)}
        for key in ('tool', 'argv', 'rc', 'stdout', 'stderr', 'observed'):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def read_host_conf(path, required=False):
    """Parse the shell-sourceable KEY=value host settings file.

    A missing file is empty unless `required` (a path the user named): then, as for a file that
    exists but cannot be read, it is an error, because silently using the defaults would point
    the modules at another host's paths."""
    values = {}
    try:
        with open(path, 'rb') as handle:
            # Paths are bytes to the kernel: a byte that is not UTF-8 stays that byte (surrogateescape).
            lines = handle.read().decode('utf-8', 'surrogateescape').splitlines()
    except (IOError, OSError) as exc:
        if not required and not os.path.lexists(path):
            return values
        raise V3veeError('Cannot read the host settings file %s (named by V3VEE_HOST_CONF): %s. Fix the path, or '
                         'unset V3VEE_HOST_CONF to use %s.' % (path, exc.strerror or exc, HOST_CONF_DEFAULT)
                         if required else
                         'Cannot read the host settings file %s: %s.' % (path, exc.strerror or exc))
    for line in lines:
        line = line.strip()
        if not line or line.startswith('#') or '=' not in line:
            continue
        key, value = line.split('=', 1)
        key = key.strip()
        if key.startswith('export '):
            key = key[len('export '):].strip()
        value = value.split(' #', 1)[0].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
            value = value[1:-1]
        values[key] = value
    return values


class Settings(object):
    """Resolved paths for one host: module parameter, then environment, then host.conf, then default."""

    def __init__(self, **kwargs):
        self.host_conf = kwargs.pop('host_conf', HOST_CONF_DEFAULT)
        self.lock_timeout = kwargs.pop('lock_timeout', DEFAULT_LOCK_TIMEOUT)
        for name in SETTINGS:
            setattr(self, name, kwargs.pop(name, None))
        if kwargs:
            raise TypeError('unknown settings: %s' % ', '.join(sorted(kwargs)))

    @classmethod
    def resolve(cls, params, environ=None):
        environ = os.environ if environ is None else environ
        named = environ.get('V3VEE_HOST_CONF')
        host_conf_path = named or HOST_CONF_DEFAULT
        conf = read_host_conf(host_conf_path, required=bool(named))
        values = {}
        for name, (env_name, conf_key, default) in SETTINGS.items():
            value = params.get(name)
            if value in (None, ''):
                value = environ.get(env_name) or conf.get(conf_key) or default
            values[name] = value
        timeout = params.get('lock_timeout')
        if timeout is not None and timeout < 0:
            raise V3veeError('lock_timeout must be 0 or more seconds (0: take the host lock only if it is free '
                             'now), not %s.' % timeout)
        values['lock_timeout'] = DEFAULT_LOCK_TIMEOUT if timeout is None else timeout
        values['host_conf'] = host_conf_path
        return cls(**values)

    @property
    def lock_path(self):
        # The lock sits beside the inventory: one host, one inventory, one lock.
        return self.inventory_path + '.lock'

    def as_dict(self):
        out = dict((name, getattr(self, name)) for name in SETTINGS)
        out['host_conf'] = self.host_conf
        out['lock_path'] = self.lock_path
        return out


def common_argument_spec():
    """The options every module shares (documented in the v3vee.palacios.common doc fragment)."""
    return dict(
        tools_dir=dict(type='path'),
        proc_dir=dict(type='path'),
        dev_dir=dict(type='path'),
        inventory_path=dict(type='path'),
        palacios_dir=dict(type='path'),
        lock_timeout=dict(type='int', default=DEFAULT_LOCK_TIMEOUT),
    )


def argument_spec(**extra):
    spec = common_argument_spec()
    spec.update(extra)
    return spec
