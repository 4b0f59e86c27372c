# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checkpoints of a VM: v3_save into a directory, v3_load into a fresh VM (spec 7, observed 11).

Both tools exit 0 whatever the kernel did (also when Palacios was built without CHECKPOINT), so
nothing is believed from them:

* a save goes into a fresh sibling directory (`.<name>.v3vee-saving`) that does not exist before
  v3_save runs, so every file in it was written by this call; it is checked (the contexts real
  Palacios writes: `header` of 47 bytes, `memory_img` of the guest memory + 12 bytes, a
  `guest_info<N>` per vcore, `devices`), a manifest with every file's size and sha256 is added,
  and only then is it renamed into place. A failed save leaves an older checkpoint untouched
  (Palacios opens its files without truncating them, so saving over one in place could also
  leave stale tails);
* a load is checked in `v3-guests-details`: the restored vcores show the rip recorded when the
  VM was saved paused or stopped, or (saved running, rip unknown) a rip other than the fresh
  VM's. Every later step (launch, pause) is verified in `v3-guests` as for any VM (observed 11:
  once a restored VM showed `stopped` right after v3_pause).

The checkpoint directory is self-describing (MANIFEST): the VM's definition at save, with the
config XML text and its sha256, lets another host restore it (the migrate role).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import shutil
import stat
import time

from ansible_collections.v3vee.palacios.plugins.module_utils import kmsg
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import GuestConfigs, prepare
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import STEP_TOOLS, Plan, definition_of, kernel_state
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import VmEntry, blocks_needed
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import CREATE_BYTES_PER_SECOND, KERNEL_LOG_HINT, entry_dict
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_definition
from ansible_collections.v3vee.palacios.plugins.module_utils.view import vm_view
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import VmJob, with_predictions

MANIFEST = 'v3vee-checkpoint.json'
FORMAT = 1
STORES = ('DIR', 'KEYED_STREAM')
VM_STATES = ('running', 'paused', 'stopped')
# struct v3_chkpt_info {char store[128]; char url[256]; ...}: the tools refuse (exit 255) at these lengths.
URL_MAX = 255
HEADER_BYTES = 47             # observed 11: the "header" context
MEMORY_IMG_EXTRA = 12         # observed 11: memory_img = guest memory + 12 bytes (DIR store)
FRESH_RIP = 0xfff0            # observed 5: a vcore's rip right after v3_create
SAVING, OLD = '.%s.v3vee-saving', '.%s.v3vee-old'
# What the kernel logs when the ioctl is unhandled (not built with CHECKPOINT; spec 7, appendix A).
UNHANDLED = {'v3_save': 'Unhandled ctrl cmd: 28', 'v3_load': 'Unhandled ctrl cmd: 27'}
NO_CHECKPOINT = ('The Palacios kernel module on this host was built without checkpoint support (CONFIG_CHECKPOINT): '
                 'the kernel log says "%s" for %s, which exits 0 all the same. Rebuild Palacios with CHECKPOINT, '
                 'FILE and KEYED_STREAMS to save and restore VMs.')
TEARDOWN = {'stopped': ('free',), 'running': ('stop', 'free'), 'paused': ('continue', 'stop', 'free'),
            'error': ('free',)}
BUILD = {'stopped': (), 'running': ('launch',), 'paused': ('launch', 'pause')}


class StepError(V3veeError):
    """A failure with the step it happened in (returned as failed_step)."""

    def __init__(self, step, err):
        super(StepError, self).__init__(err.msg, tool=err.tool, argv=err.argv, rc=err.rc, stdout=err.stdout,
                                        stderr=err.stderr, observed=err.observed, hint=err.hint)
        self.step = step

    def fail_kwargs(self):
        out = super(StepError, self).fail_kwargs()
        out['failed_step'] = self.step
        return out


def store_url(store, path):
    """The url the tools take: the directory itself for DIR, `file:<dir>` for KEYED_STREAM."""
    return path if store == 'DIR' else 'file:' + path


def check_path(path, store):
    """The checkpoint directory as given: absolute, not /, short enough for the tools' url field
    (also as the temporary sibling the save goes to). Returns it normalised."""
    if not path or not os.path.isabs(path):
        raise V3veeError('path %r must be an absolute directory path on the managed host.' % (path,))
    path = os.path.normpath(path)
    if path == '/' or '\0' in path:
        raise V3veeError('path %r cannot hold a checkpoint; give a directory of its own.' % path)
    longest = store_url(store, os.path.join(os.path.dirname(path), SAVING % os.path.basename(path)))
    if len(longest.encode('utf-8', 'surrogateescape')) > URL_MAX:
        raise V3veeError('path %r is too long: Palacios takes checkpoint urls of at most %d bytes, and the save '
                         'goes through %r first.' % (path, URL_MAX, longest))
    return path


def utc_now():
    stamp = time.time()
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(stamp)) + '.%06dZ' % int(stamp % 1 * 1000000)


def file_digest(path):
    """(size, sha256 hex) of a file, read in chunks (memory_img is as large as the guest)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def store_files(directory):
    """Every file Palacios wrote in `directory` (names may contain spaces: `os debug`)."""
    out = {}
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if name == MANIFEST or not stat.S_ISREG(os.lstat(full).st_mode):
            continue
        size, sha = file_digest(full)
        out[name] = {'size': size, 'sha256': sha}
    return out


def saved_problems(directory, store, mem_bytes, vcores):
    """What is missing from a save's directory, in words ([] when it holds a checkpoint)."""
    if not os.path.isdir(directory):
        return ['v3_save wrote nothing (%s does not exist)' % directory]
    problems = []

    def size(name):
        try:
            return os.path.getsize(os.path.join(directory, name))
        except OSError:
            return None

    header, memory = size('header'), size('memory_img')
    if header is None or header == 0 or (store == 'DIR' and header != HEADER_BYTES):
        problems.append('header is %s (Palacios writes %d bytes)' % (
            'missing' if header is None else '%d bytes' % header, HEADER_BYTES))
    want = mem_bytes + MEMORY_IMG_EXTRA
    # The DIR store writes the context raw (observed); the file: keyed stream adds its key framing.
    if memory is None or (memory != want if store == 'DIR' else memory < mem_bytes):
        problems.append('memory_img is %s (the VM has %d bytes of memory: %d expected)' % (
            'missing' if memory is None else '%d bytes' % memory, mem_bytes, want))
    for core in range(vcores):
        if not size('guest_info%d' % core):
            problems.append('guest_info%d (the state of vcore %d) is missing or empty' % (core, core))
    if not size('devices'):
        problems.append('devices (the device list) is missing or empty')
    return problems


def read_manifest(path):
    """The manifest of the checkpoint at `path`, or None when `path` does not exist. A path that
    exists but holds no checkpoint of this collection is an error (it is never overwritten or removed)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        raise V3veeError('%s exists and is not a directory (a checkpoint is a directory); nothing was done.' % path)
    try:
        with open(os.path.join(path, MANIFEST), 'r') as handle:
            manifest = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise V3veeError('%s exists but holds no readable checkpoint manifest %s (%s): it was not made by '
                         'v3vee.palacios.v3vee_checkpoint, or its save was cut short. Nothing was done; remove it '
                         'or choose another path.' % (path, MANIFEST, getattr(exc, 'strerror', None) or exc))
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT or not isinstance(manifest.get('files'), dict):
        raise V3veeError('%s/%s is not a checkpoint manifest of format %d; nothing was done.' % (path, MANIFEST, FORMAT))
    return manifest


def verify_files(path, manifest):
    """Every file the manifest lists is in `path` with its size and sha256 (a transfer cut short,
    or a file changed since the save, is named before any tool runs)."""
    for name in sorted(manifest['files']):
        meta = manifest['files'][name]
        if name in ('', '.', '..') or '/' in name:
            raise V3veeError('The manifest of %s lists %r, which is not a file name; refusing it.' % (path, name))
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            raise V3veeError('Checkpoint %s is incomplete: %r is missing (the manifest lists it). Nothing was run.'
                             % (path, name))
        size = os.path.getsize(full)
        if size != meta.get('size'):
            raise V3veeError('Checkpoint %s does not match its manifest: %r is %d bytes, the manifest says %s. Nothing '
                             'was run.' % (path, name, size, meta.get('size')))
        if file_digest(full)[1] != meta.get('sha256'):
            raise V3veeError('Checkpoint %s does not match its manifest: the sha256 of %r differs. Nothing was run.'
                             % (path, name))


def saved_definition(record):
    """The VM's definition as a manifest carries it: the recorded one plus the config XML text and
    the sha256 of the config (or image), so another host can check or recreate the same config."""
    definition = definition_of(record)
    source = definition['config'] or definition['image']
    try:
        digest = file_digest(source)[1]
        text = None
        if definition['config']:
            with open(definition['config'], 'rb') as handle:
                text = handle.read().decode('utf-8')
    except (IOError, OSError, UnicodeDecodeError) as exc:
        raise V3veeError('Cannot read %s, the recorded %s of VM %r: %s. Nothing was saved.'
                         % (source, 'config' if definition['config'] else 'image', record['name'], exc))
    definition.update(config_xml=text, sha256=digest)
    return definition


def recorded_rips(details, slot):
    """The vcores' rips (ints) in v3-guests-details for slot, or None."""
    detail = (details or {}).get(slot)
    if not detail or not detail['vcores']:
        return None
    return [int(core['rip'], 16) for core in detail['vcores']]


class Checkpoints(object):
    """The checkpoint operations of one module run on one host (Host from vm.py)."""

    def __init__(self, host, store, inventory_path, runner, kernel_log=None, checkpoints=None):
        self.host = host
        self.store = store                              # VM records (InventoryStore or StagedStore)
        self.checkpoints = checkpoints or store         # checkpoint records (InventoryStore)
        self.inventory_path = inventory_path
        self.runner = runner
        self.kernel_log = kernel_log
        self.steps = []
        self.made = None          # the kernel entry of the VM a restore created

    @property
    def check_mode(self):
        return self.host.check_mode

    # -- helpers ----------------------------------------------------------------------------
    def _kernel_says(self, text):
        """Whether one of the latest kernel messages contains `text`."""
        found = kmsg.collect(self.runner, count=50, kernel_log=self.kernel_log, exclude=kmsg.DEFAULT_EXCLUDE)
        return any(text in message['message'] for message in found.get('messages') or [] if message)

    def _deadline(self, mem_bytes):
        # The save/load copies the guest memory: like v3_create, one more second per 16 MB.
        return self.host.executor.timeout + mem_bytes // CREATE_BYTES_PER_SECOND

    def _wave(self, step, job):
        self.steps.append(step)
        self.host.executor.run_wave(step, [job])
        if job.error is not None:
            raise StepError(step, job.error)

    def _tool(self, tool, entry, store, url, mem_bytes, step):
        self.steps.append(step)
        result = self.host.tools.run(tool, [self.host.executor.device(entry.index), store, url],
                                     self._deadline(mem_bytes))
        if result.rc != 0:
            raise StepError(step, V3veeError('%s of VM %r failed (exit %s: "%s").' % (
                tool, entry.name, result.rc, (result.stdout.strip() or result.stderr.strip() or 'no output')),
                tool=tool, argv=result.argv, rc=result.rc, stdout=result.stdout, stderr=result.stderr,
                hint=KERNEL_LOG_HINT))
        return result

    def _locate(self, name, snap):
        record = self.store.get(name)
        entry = self.host.locate(name, record, snap)
        self.host.refuse_unplannable(name, snap, entry)
        return record, entry

    @staticmethod
    def view(path, manifest):
        if manifest is None:
            return {'path': path, 'exists': False}
        return {'path': path, 'exists': True, 'vm': manifest['vm'], 'saved_at': manifest['saved_at'],
                'vm_state': manifest['vm_state'], 'store': manifest['store'], 'files': len(manifest['files'])}

    def _record(self, path, manifest, recover):
        self.checkpoints.put_checkpoint({
            'path': path, 'vm': manifest['vm'], 'store': manifest['store'], 'url': manifest['url'],
            'saved_at': manifest['saved_at'], 'vm_state': manifest['vm_state'], 'definition': manifest['definition'],
            'memory_bytes': manifest['memory_bytes'], 'cores': manifest['cores'], 'recover': bool(recover)})

    # -- present ----------------------------------------------------------------------------
    def save(self, name, path, store_kind, force=False, pause=False, recover=None):
        snap = self.host.reader.snapshot(details=True)
        if not snap.loaded:
            raise V3veeError('The Palacios kernel module is not loaded (%s/v3-info does not exist); there is no VM to '
                             'save.' % self.host.settings.proc_dir)
        record, entry = self._locate(name, snap)
        if record is None:
            raise V3veeError('VM %r is not in the inventory: a checkpoint records the definition it was made from. '
                             'Adopt it first (v3vee.palacios.v3vee_vm with its image or config).' % name)
        observed = kernel_state(entry.state) if entry is not None else 'none'
        if observed not in VM_STATES:
            raise V3veeError('VM %r is %s: only a VM in the kernel (stopped, running or paused) can be saved; '
                             'nothing was run.' % (name, 'not in the kernel (inactive)' if entry is None else entry.state))
        existing = read_manifest(path)
        before = self.view(path, existing)
        if existing is not None and existing.get('vm') != name:
            raise V3veeError('%s holds a checkpoint of VM %r, not %r; nothing was saved. Remove it first '
                             '(state: absent) or choose another path.' % (path, existing.get('vm'), name))
        row = self.checkpoints.checkpoint(path)
        if existing is not None and not force:
            # Already there: only its inventory record may change (recorded here, or asked to recover or not).
            wanted = bool(row and row['recover']) if recover is None else recover
            changed = row is None or row['recover'] != wanted
            if changed and not self.check_mode:
                self._record(path, existing, wanted)
            return self._result(name, path, existing, before, entry, record, changed=changed)
        steps = (['pause'] if pause and observed == 'running' else []) + ['save']
        for tool in ['v3_save'] + [STEP_TOOLS[s] for s in steps if s in STEP_TOOLS]:
            self.host.tools.which(tool)
        definition = saved_definition(record)
        after_state = 'paused' if 'pause' in steps else observed
        if self.check_mode:
            self.steps = steps
            predicted = {'vm': name, 'saved_at': None, 'vm_state': after_state, 'store': store_kind, 'files': {}}
            return self._result(name, path, predicted, before, entry._replace(state=after_state), record, changed=True)

        job = VmJob(name, after_state)
        job.current = job.entry = entry
        # The record follows the kernel; the desired state stays (recover resumes the VM).
        plan = Plan([], after_state, definition_of(record), record['desired_state'], False, False)
        try:
            manifest = self._save(job, path, store_kind, steps, definition, after_state)
        except V3veeError:
            self._record_vm(job, plan, record)
            raise
        self._record_vm(job, plan, record)
        row_recover = bool(recover) if recover is not None else bool(row and row['recover'])
        self._record(path, manifest, row_recover)
        return self._result(name, path, manifest, before, job.current, self.store.get(name), changed=True)

    def _save(self, job, path, store_kind, steps, definition, after_state):
        """Pause (if asked), v3_save into the fresh sibling, verify, put it in place. Returns the manifest."""
        name, entry = job.name, job.current
        if 'pause' in steps:
            self._wave('pause', job)
        details = self.host.reader.snapshot(details=True).details
        rips = recorded_rips(details, entry.index) if after_state in ('paused', 'stopped') else None
        parent, base = os.path.split(path)
        work, old = os.path.join(parent, SAVING % base), os.path.join(parent, OLD % base)
        try:
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o700)
            # Leftovers of a run that was killed (the names are ours): a checkpoint it had moved aside
            # before its new one was in place goes back.
            if os.path.lexists(old) and not os.path.lexists(path):
                os.rename(old, path)
            for leftover in (work, old):
                if os.path.lexists(leftover):
                    shutil.rmtree(leftover)
        except OSError as exc:
            raise StepError('save', V3veeError('Cannot prepare %s for the checkpoint: %s.' % (parent, exc)))
        try:
            self._tool('v3_save', job.current, store_kind, store_url(store_kind, work), entry.mem_bytes, 'save')
            manifest = self._verify_save(job, after_state, work, store_kind, definition, rips,
                                         store_url(store_kind, path))
            if os.path.lexists(path):
                os.rename(path, old)
            os.rename(work, path)
        except (OSError, V3veeError) as exc:
            # A failed save never replaces a good checkpoint: only the fresh directory goes.
            if os.path.lexists(work):
                shutil.rmtree(work, ignore_errors=True)
            if os.path.lexists(old) and not os.path.lexists(path):
                os.rename(old, path)
            if isinstance(exc, StepError):
                raise
            if isinstance(exc, V3veeError):
                raise StepError('save', exc)
            raise StepError('save', V3veeError('Cannot put the checkpoint in place at %s: %s.' % (path, exc)))
        if os.path.lexists(old):
            shutil.rmtree(old, ignore_errors=True)
        return manifest

    def _verify_save(self, job, state, work, store_kind, definition, rips, url):
        name, entry = job.name, job.current
        guests = self.host.reader.guests()
        now = [e for e in guests if e.index == entry.index and e.name == name]
        job.current = now[0] if now else None
        if not now or now[0].state != state:
            raise V3veeError('v3_save left VM %r %s; it was %s (a running VM must keep running). Its checkpoint was '
                             'discarded.' % (name, now[0].state if now else 'gone from %s' % entry.device, state),
                             observed=entry_dict(now[0] if now else None), hint=KERNEL_LOG_HINT)
        problems = saved_problems(work, store_kind, entry.mem_bytes, entry.vcores)
        if problems:
            if self._kernel_says(UNHANDLED['v3_save']):
                raise V3veeError(NO_CHECKPOINT % (UNHANDLED['v3_save'], 'v3_save'))
            raise V3veeError('v3_save exited 0 but the checkpoint of VM %r is not complete: %s. Nothing was kept.'
                             % (name, '; '.join(problems)), hint=KERNEL_LOG_HINT)
        manifest = {
            'format': FORMAT, 'vm': name, 'definition': definition, 'vm_state': state, 'saved_at': utc_now(),
            'store': store_kind, 'url': url, 'memory_bytes': entry.mem_bytes, 'cores': entry.vcores,
            'rips': ['0x%016x' % rip for rip in rips] if rips else None, 'files': store_files(work),
        }
        temp = os.path.join(work, '.%s.tmp' % MANIFEST)
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(handle, json.dumps(manifest, indent=1, sort_keys=True).encode('utf-8'))
            os.fsync(handle)
        finally:
            os.close(handle)
        os.rename(temp, os.path.join(work, MANIFEST))
        return manifest

    def _result(self, name, path, manifest, before, entry, record, changed):
        checkpoint = dict(manifest, path=path)
        return {'changed': changed, 'checkpoint': checkpoint, 'vm': vm_view(name, record, entry),
                'steps': list(self.steps),
                'diff': {'before': before, 'after': self.view(path, manifest)}}

    # -- restored ---------------------------------------------------------------------------
    def restore_definition(self, name, manifest, record):
        """(definition, shape, inline config or None) to create the VM from: the inventory's when it
        has the VM (it must be the config the checkpoint was saved from), else the manifest's."""
        saved = manifest['definition']
        if record is not None:
            definition = definition_of(record)
            source = definition['config'] or definition['image']
            try:
                digest = file_digest(source)[1]
            except (IOError, OSError) as exc:
                raise V3veeError('Cannot read %s, the recorded config of VM %r: %s.' % (source, name, exc))
            if digest != saved['sha256'] or definition['config_options'] != saved['config_options']:
                raise V3veeError('The checkpoint at %s was saved from another config than the one the inventory '
                                 'records for VM %r (%s%s): Palacios would load it into a VM of another shape and only '
                                 'log the failure. Nothing was run. Restore it under a VM whose record has the same '
                                 'config, or remove the record (v3vee_vm state: absent) to use the checkpoint\'s own.'
                                 % (manifest.get('path', ''), name, source,
                                    ', other config_options' if definition['config_options'] != saved['config_options']
                                    else ', other sha256'))
            return definition, check_definition(**definition), None
        options = dict(saved.get('config_options') or {})
        for key in ('config', 'image'):
            path = saved.get(key)
            if path and os.path.isfile(path) and file_digest(path)[1] == saved['sha256']:
                definition = {'image': saved.get('image'), 'config': saved.get('config'), 'config_options': options}
                return definition, check_definition(**definition), None
        if saved.get('config_xml') is None:
            raise V3veeError('The checkpoint of VM %r was saved from the image %s, which this host does not have with '
                             'the same content (sha256 %s); copy it there first.'
                             % (name, saved.get('image'), saved['sha256']))
        data = saved['config_xml'].encode('utf-8')
        if hashlib.sha256(data).hexdigest() != saved['sha256']:
            raise V3veeError('The manifest\'s config_xml does not match its sha256; the manifest is damaged.')
        inline = prepare(self.inventory_path, name, data, options)
        return inline.definition, inline.shape, inline

    def restore(self, name, path, store_kind, vm_state='running', force=False):
        manifest = read_manifest(path)
        if manifest is None:
            raise V3veeError('There is no checkpoint at %s on this host; nothing was run.' % path)
        manifest = dict(manifest, path=path)
        if manifest['vm'] != name:
            raise V3veeError('%s holds a checkpoint of VM %r, not %r; nothing was run.' % (path, manifest['vm'], name))
        if manifest['store'] != store_kind:
            raise V3veeError('The checkpoint at %s was saved with store %s; restore it with store: %s.'
                             % (path, manifest['store'], manifest['store']))
        verify_files(path, manifest)
        record = self.store.get(name)
        definition, shape, inline = self.restore_definition(name, manifest, record)
        if (shape.mem_bytes, shape.vcores) != (manifest['memory_bytes'], manifest['cores']):
            raise V3veeError('The checkpoint at %s holds %d bytes of memory and %d vcores, its config now makes %d and %d; '
                             'a load would fail. Nothing was run.' % (path, manifest['memory_bytes'], manifest['cores'],
                                                                      shape.mem_bytes, shape.vcores))
        snap = self.host.snapshot(memory=True)
        entry = self.host.locate(name, record, snap)
        self.host.refuse_unplannable(name, snap, entry)
        before = vm_view(name, record, entry)
        observed = kernel_state(entry.state) if entry is not None else 'none'
        if entry is not None and not force:
            raise V3veeError('VM %r exists (%s at %s); restoring the checkpoint replaces it. Set force: true to do '
                             'that; nothing was run.' % (name, entry.state, entry.device), observed=entry_dict(entry))
        teardown = TEARDOWN.get(observed, ())
        steps = list(teardown) + ['create', 'load'] + list(BUILD[vm_state])
        kernel_steps = [s for s in steps if s != 'load']
        plan = Plan(kernel_steps, vm_state, definition, vm_state, False, False)
        view = with_predictions(snap, {entry.index: None}) if teardown else snap
        self.host.preflight(name, plan, view, shape)
        self.host.tools.which('v3_load')
        if self.check_mode:
            self.steps = steps
            slot = view.free_slots()[0]      # preflight made sure there is one
            after = VmEntry(slot, name, '/dev/v3-vm%d' % slot, vm_state, shape.vcores,
                            blocks_needed(shape.mem_bytes, view.block_size), shape.mem_bytes, 'general')
            self.host.predicted[slot] = after
            if teardown:
                self.host.predicted.setdefault(entry.index, None)
            record_after = new_record(name, definition, slot, after.device, vm_state, vm_state, previous=record)
            return self._restored(name, path, manifest, before, record_after, after)

        job = VmJob(name, vm_state, definition, shape)
        job.plan, job.current, job.record, job.entry = plan, entry, record, entry
        try:
            for step in teardown:
                self._wave(step, job)
            if inline is not None:
                GuestConfigs(self.inventory_path).write(inline)
            self._wave('create', job)
            self.made = job.current
            fresh = recorded_rips(self.host.reader.snapshot(details=True).details, job.current.index)
            self._tool('v3_load', job.current, store_kind, store_url(store_kind, path), shape.mem_bytes, 'load')
            self._verify_load(job, manifest, fresh)
            for step in BUILD[vm_state]:
                self._wave(step, job)
        except V3veeError as err:
            self._record_vm(job, plan, record)
            if inline is not None:
                configs = GuestConfigs(self.inventory_path)
                configs.prune([inline.path], set(r.get('config') for r in self.store.all()))
            raise err if isinstance(err, StepError) else StepError(self.steps[-1] if self.steps else 'load', err)
        record_after = new_record(name, definition, job.current.index, job.current.device, job.current.state,
                                  vm_state, previous=record)
        self.store.put(record_after)
        self._record(path, manifest, False)     # recorded here now; a restore answers a recover request
        return self._restored(name, path, manifest, before, record_after, job.current)

    def _verify_load(self, job, manifest, fresh):
        """v3-guests still shows the VM stopped; its vcores show the saved state (observed 11)."""
        snap = self.host.reader.snapshot(details=True)
        now = [e for e in snap.guests if e.index == job.current.index and e.name == job.name]
        rips = recorded_rips(snap.details, job.current.index)
        saved = [int(rip, 16) for rip in manifest['rips']] if manifest.get('rips') else None
        if not now or now[0].state != 'stopped':
            problem = '/proc shows it %s, not stopped' % (now[0].state if now else 'gone')
        elif rips is None:
            problem = 'v3-guests-details shows no vcores for it'
        elif saved is not None:
            problem = None if rips == saved else 'its vcores show rip %s, the checkpoint recorded %s' % (
                ', '.join('0x%x' % r for r in rips), ', '.join('0x%x' % r for r in saved))
        else:
            # Saved while running: the rip is not known, but a loaded vcore no longer has the fresh one.
            problem = None if rips != (fresh or [FRESH_RIP] * len(rips)) else \
                'its vcores still show the fresh VM\'s rip %s' % ', '.join('0x%x' % r for r in rips)
        if problem is None:
            job.current = now[0]
            return
        if self._kernel_says(UNHANDLED['v3_load']):
            err = V3veeError(NO_CHECKPOINT % (UNHANDLED['v3_load'], 'v3_load'))
        else:
            err = V3veeError('v3_load exited 0 but did not restore VM %r from %s: %s. The VM this run created was '
                             'freed.' % (job.name, manifest['path'], problem), hint=KERNEL_LOG_HINT)
        if now and kernel_state(now[0].state) in TEARDOWN:
            job.current = now[0]
            for step in TEARDOWN[kernel_state(now[0].state)]:
                self.host.executor.run_wave(step, [job])
        raise StepError('load', err)

    def _record_vm(self, job, plan, record):
        """After the steps (or a failed one): the inventory says what /proc shows of the VM this run acted
        on (a VM left in the kernel stays recorded; one it freed is recorded inactive, or not at all if new)."""
        if not self.steps:
            return
        slots = set(e.index for e in (job.entry, job.current, self.made) if e is not None)
        now = [e for e in self.host.reader.guests() if e.index in slots and e.name == job.name]
        if now:
            self.store.put(new_record(job.name, plan.definition, now[0].index, now[0].device, now[0].state,
                                      plan.desired_state, previous=record))
        elif record is not None:
            self.store.put(new_record(job.name, plan.definition, desired_state=plan.desired_state, previous=record))

    def _restored(self, name, path, manifest, before, record_after, entry):
        after = vm_view(name, record_after, entry)
        return {'changed': True, 'checkpoint': manifest, 'vm': after, 'steps': list(self.steps),
                'diff': {'before': before, 'after': after}}

    # -- absent -----------------------------------------------------------------------------
    def remove(self, name, path):
        manifest = read_manifest(path)
        row = self.checkpoints.checkpoint(path)
        if manifest is not None and manifest.get('vm') != name:
            raise V3veeError('%s holds a checkpoint of VM %r, not %r; nothing was removed.' % (path, manifest['vm'], name))
        before = self.view(path, manifest)
        changed = manifest is not None or row is not None
        if changed and not self.check_mode:
            if manifest is not None:
                try:
                    shutil.rmtree(path)
                except OSError as exc:
                    raise V3veeError('Cannot remove the checkpoint %s: %s.' % (path, exc))
            self.checkpoints.delete_checkpoint(path)
        snap = self.host.reader.snapshot()
        record = self.store.get(name)
        entry = self.host.locate(name, record, snap) if snap.loaded else None
        return {'changed': changed, 'checkpoint': dict(manifest or {}, path=path, exists=False),
                'vm': vm_view(name, record, entry), 'steps': [],
                'diff': {'before': before, 'after': self.view(path, None)}}


def latest_recover_request(checkpoints):
    """The VM's latest checkpoint when its record asks recover to restore from it, else None."""
    return checkpoints[-1] if checkpoints and checkpoints[-1]['recover'] else None
