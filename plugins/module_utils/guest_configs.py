# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guest configs given inline (config_xml): validated like files, kept in a managed directory.

`v3_create -b` needs the XML as a file on the managed host, so inline XML is written to
`<directory of inventory_path>/configs/` (mode 0700, files 0600, owned by the user the modules
run as) and recorded as the VM's `config`, like a config file the user named.

The file name is `<name>-<hash>.xml`, the hash taken over the VM name and the content: a change
of content is a change of the recorded config path, so the planner's rules for a changed
definition (refused for an active VM unless recreate) apply unchanged, and the file an existing
VM was built from is never rewritten in place. A managed file no record refers to any more is
removed by the run that stopped referring to it.

Relative `<file filename>` references are refused in inline XML: v3_create resolves them
against its working directory (docs/palacios-interface.md 5.4), which would be the
managed directory, where the user cannot put files.

Per VM item: checked_definition() before the lock (bad input fails before anything is read or
written), then GuestConfigs.write() under the lock before v3_create, and prune() at the end.

A VM moving to another host takes its definition along: portable_definition() adds the config's
XML text and sha256 to the recorded one (v3vee_vm_info returns it), and received_definition()
turns it back into what this host creates the VM from - the same config file, checked by its
sha256, or the same inline XML staged in this host's managed directory.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import hashlib
import os
import re
import stat

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_definition, check_xml

CONFIGS_DIR = 'configs'
DIR_MODE = 0o700
FILE_MODE = 0o600
_UNSAFE = re.compile(r'[^A-Za-z0-9_.-]')
_MANAGED_NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}-[0-9a-f]{16}\.xml$')


def configs_dir(inventory_path):
    """The managed directory: beside the inventory, so one host setting places both."""
    return os.path.join(os.path.dirname(os.path.abspath(inventory_path)), CONFIGS_DIR)


def file_name(name, data):
    """`<name>-<hash>.xml`: readable, bounded (names may be 127 bytes of any printable UTF-8,
    and contain `/`), unique per VM name and content."""
    stem = _UNSAFE.sub('_', name)[:64]
    if stem[0] in '.-':  # no hidden files, nothing that reads as an option
        stem = '_' + stem[1:]
    digest = hashlib.sha256(name.encode('utf-8', 'surrogateescape') + b'\0' + data).hexdigest()[:16]
    return '%s-%s.xml' % (stem, digest)


def is_managed(inventory_path, path):
    """Whether `path` is a file of the managed directory (a config given inline)."""
    if not path:
        return False
    return os.path.dirname(path) == configs_dir(inventory_path) and bool(_MANAGED_NAME.match(os.path.basename(path)))


class InlineConfig(object):
    """A validated inline config for one VM: where it goes, its bytes, and the VM's shape."""

    def __init__(self, name, path, data, options, shape):
        self.name = name
        self.path = path
        self.data = data
        self.options = options
        self.shape = shape

    @property
    def definition(self):
        return {'image': None, 'config': self.path, 'config_options': dict(self.options)}


def prepare(inventory_path, name, config_xml, options=None):
    """Validate inline XML as check_config validates a file; nothing is written."""
    data = config_xml.encode('utf-8') if not isinstance(config_xml, bytes) else config_xml
    directory = configs_dir(inventory_path)
    source = 'config_xml of VM %r' % name
    shape = check_xml(data, source, directory, options, relative_files=False)
    return InlineConfig(name, os.path.join(directory, file_name(name, data)), data, dict(options or {}), shape)


def checked_definition(name, inventory_path, image=None, config=None, config_xml=None, config_options=None):
    """One VM item's definition, validated: (definition or None, VmShape or None, InlineConfig or None).

    Raises V3veeError for bad input; reads the files named, writes nothing.
    """
    given = [key for key, value in (('image', image), ('config', config), ('config_xml', config_xml)) if value]
    if len(given) > 1:
        raise V3veeError('VM %r: %s are mutually exclusive; give one.' % (name, ' and '.join(given)))
    if config_options and not (config or config_xml):
        raise V3veeError('VM %r: config_options override opt_tag elements of an XML config, so they need config '
                         'or config_xml.' % name)
    options = dict((key, '%s' % value) for key, value in (config_options or {}).items())
    if config_xml:
        inline = prepare(inventory_path, name, config_xml, options)
        return inline.definition, inline.shape, inline
    if image or config:
        definition = {'image': image, 'config': config, 'config_options': options}
        return definition, check_definition(**definition), None
    return None, None, None


def portable_definition(record, inventory_path):
    """A recorded definition as another host can use it: image or config path, opt_tag overrides,
    whether the config was given inline, and the config's XML text and sha256 (None when the file
    cannot be read here; config_error says why)."""
    config = record.get('config')
    out = {'image': record.get('image'), 'config': config, 'config_options': dict(record.get('config_options') or {}),
           'config_inline': is_managed(inventory_path, config), 'config_xml': None, 'config_sha256': None,
           'config_error': None}
    if config:
        try:
            with open(config, 'rb') as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            out['config_error'] = 'Cannot read %s: %s' % (config, exc.strerror or exc)
        else:
            out['config_xml'] = data.decode('utf-8', 'replace')
            out['config_sha256'] = hashlib.sha256(data).hexdigest()
    return out


def received_definition(name, definition, inventory_path):
    """What this host creates VM `name` from, given another host's portable_definition():
    (definition, shape, inline) as checked_definition() returns them. A config file must be here with
    the same content (sha256); an inline config is staged from its XML. Raises V3veeError."""
    image, config = definition.get('image'), definition.get('config')
    options = definition.get('config_options') or {}
    want = definition.get('config_sha256')
    if image:
        return checked_definition(name, inventory_path, image=image)
    if not config:
        raise V3veeError('The definition of VM %r names neither an image nor a config (give what v3vee_vm_info '
                         'returns as vms[].definition).' % name)
    if definition.get('config_inline'):
        xml = definition.get('config_xml')
        if not xml:
            raise V3veeError('The definition of VM %r has an inline config but no config_xml to stage it from.' % name)
        data = xml.encode('utf-8')
        if want and hashlib.sha256(data).hexdigest() != want:
            raise V3veeError('The config_xml of VM %r does not match its config_sha256 (%s); the definition was '
                             'altered on the way.' % (name, want))
        return checked_definition(name, inventory_path, config_xml=xml, config_options=options)
    try:
        with open(config, 'rb') as handle:
            have = hashlib.sha256(handle.read()).hexdigest()
    except (IOError, OSError) as exc:
        raise V3veeError('VM %r needs its config %s on this host too, and it cannot be read here: %s. Copy it there '
                         'first (the definition carries its XML as config_xml).' % (name, config, exc.strerror or exc))
    if want and have != want:
        raise V3veeError('The config %s of VM %r differs on this host (sha256 %s) from the one it runs from (%s); a '
                         'VM can only move into a VM made from the same config. Copy the same file there.'
                         % (config, name, have, want))
    return checked_definition(name, inventory_path, config=config, config_options=options)


class GuestConfigs(object):
    """The managed directory of one host. In check mode it only predicts (nothing is written)."""

    def __init__(self, inventory_path, check_mode=False):
        self.path = configs_dir(inventory_path)
        self.check_mode = check_mode

    # The directory must be ours: a directory (not a symlink), owned by us, writable by nobody
    # else. Everything inside is done relative to its open descriptor (no path lookups that a
    # swapped symlink could redirect).
    def _open_dir(self, create):
        try:
            info = os.lstat(self.path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise V3veeError('Cannot inspect the guest config directory %s: %s' % (self.path, exc))
            if not create:
                return None
            try:
                os.mkdir(self.path, DIR_MODE)
                os.chmod(self.path, DIR_MODE)
            except OSError as exc:
                raise V3veeError('Cannot create the guest config directory %s: %s' % (self.path, exc))
            info = os.lstat(self.path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            raise V3veeError('%s must be a directory owned by uid %d and writable by nobody else (it holds the guest '
                             'configs given inline); it is not, so nothing is written there. Remove or fix it.'
                             % (self.path, os.geteuid()))
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        if not os.path.samestat(os.fstat(fd), info):
            os.close(fd)
            raise V3veeError('%s changed while it was opened; nothing is written there.' % self.path)
        return fd

    @staticmethod
    def _current(fd, base, data):
        """Whether `base` in the directory already holds `data` as a private regular file."""
        try:
            handle = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError:
            return False  # missing, or a symlink (ELOOP): the rename below replaces it
        try:
            info = os.fstat(handle)
            if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) != FILE_MODE \
                    or info.st_uid != os.geteuid() or info.st_size != len(data):
                return False
            chunks = []
            while True:
                chunk = os.read(handle, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b''.join(chunks) == data
        finally:
            os.close(handle)

    def write(self, item):
        """Put `item` in place: atomically (temp file + rename), 0600. Returns whether it (would have) changed."""
        fd = self._open_dir(create=not self.check_mode)
        if fd is None:
            return True
        base = os.path.basename(item.path)
        try:
            if self._current(fd, base, item.data):
                return False
            if self.check_mode:
                return True
            temp = '.%s.tmp%d' % (base, os.getpid())
            try:
                os.unlink(temp, dir_fd=fd)  # a leftover of a killed run
            except OSError:
                pass
            handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE, dir_fd=fd)
            try:
                os.fchmod(handle, FILE_MODE)
                view = memoryview(item.data)
                while view:
                    view = view[os.write(handle, view):]
                os.fsync(handle)
            finally:
                os.close(handle)
            os.rename(temp, base, src_dir_fd=fd, dst_dir_fd=fd)
            os.fsync(fd)
            return True
        except OSError as exc:
            raise V3veeError('Cannot write the guest config %s: %s' % (item.path, exc))
        finally:
            os.close(fd)

    def prune(self, candidates, referenced):
        """Remove the managed files among `candidates` that no path in `referenced` names.
        Returns the paths removed (in check mode: that would be)."""
        unused = sorted(set(p for p in candidates if p and os.path.dirname(p) == self.path
                            and _MANAGED_NAME.match(os.path.basename(p))) - set(referenced))
        if not unused:
            return []
        fd = self._open_dir(create=False)
        if fd is None:
            return []
        removed = []
        try:
            for path in unused:
                base = os.path.basename(path)
                try:
                    os.lstat(os.path.join(self.path, base))
                except OSError:
                    continue
                if not self.check_mode:
                    try:
                        os.unlink(base, dir_fd=fd)  # unlink never follows a symlink
                    except OSError as exc:
                        raise V3veeError('Cannot remove the unused guest config %s: %s' % (path, exc))
                removed.append(path)
        finally:
            os.close(fd)
        return removed


def converge_with_config(configs, store, name, desired, inline, converge):
    """Run `converge()` (the engine's converge of VM `name`) with its inline config in place.

    The file is written first (v3_create reads it); afterwards every managed file this VM's
    record referred to before or now, that no record refers to after the run, is removed - also
    when converge fails (a refused change leaves no file behind). Returns converge's result with
    `guest_configs` ({written, removed}) and `changed` covering the files.
    """
    staged = _stage(configs, store, [(name, desired, inline)])
    try:
        result = converge()
    except V3veeError:
        record = store.get(name)
        _prune(configs, store, staged, {name: record.get('config') if record else None})
        raise
    files = _prune(configs, store, staged, {name: _recorded_config(result)})[name]
    result['guest_configs'] = files
    result['changed'] = result['changed'] or bool(files['written'] or files['removed'])
    return result


def converge_all_with_configs(configs, store, wanted, converge):
    """The batch form of converge_with_config (v3vee_vms): `wanted` is [(name, desired, inline)],
    `converge()` runs Host.converge_all and returns its jobs (a job's failure is in job.error;
    a failed job's record is what the store holds). Each job's result gains `guest_configs`."""
    staged = _stage(configs, store, wanted)
    jobs = converge()
    for job in jobs:
        if job.name not in staged:  # a VM exclusive took away: its inline config goes with it
            staged[job.name] = ([job.record.get('config') if job.record else None], None)
    after = {}
    for job in jobs:
        if job.error is not None:
            record = store.get(job.name)
            after[job.name] = record.get('config') if record else None
        else:
            after[job.name] = _recorded_config(job.result)
    files = _prune(configs, store, staged, after)
    for job in jobs:
        if job.name in files and job.result is not None:
            job.result['guest_configs'] = files[job.name]
            job.result['changed'] = job.result['changed'] or bool(files[job.name]['written'] or files[job.name]['removed'])
    return jobs


def _recorded_config(result):
    return result['vm'].get('config') if result['vm'].get('in_inventory') else None


def _stage(configs, store, wanted):
    """Write the inline configs (v3_create reads them); name -> (candidate paths, written inline path)."""
    staged = {}
    for name, desired, inline in wanted:
        before = store.get(name)
        candidates = [before.get('config') if before else None]
        written = None
        if inline is not None and desired != 'absent':
            candidates.append(inline.path)
            if configs.write(inline):
                written = inline.path
        staged[name] = (candidates, written)
    return staged


def _prune(configs, store, staged, after):
    """Remove the managed files the staged VMs referred to that no record refers to after the run.
    `after`: name -> the config its record refers to now (the store is not written in check mode)."""
    referenced = set(r.get('config') for r in store.all() if r['name'] not in after) | set(after.values())
    candidates = [path for name in staged for path in staged[name][0]]
    removed = set(configs.prune(candidates, referenced))
    files = {}
    for name, (paths, written) in staged.items():
        files[name] = {
            'written': [written] if written and written == after.get(name) else [],
            'removed': sorted(p for p in removed if p in paths and p != written),
        }
    return files
