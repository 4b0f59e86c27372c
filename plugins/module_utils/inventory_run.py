# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One v3vee_inventory run: its operations in their fixed order, over one staged inventory.

Order: gui_import -> vms -> adopt -> reconcile -> recover -> gui_export. Records are decided
first (nothing is written and no tool runs if any of that fails), then recover acts on the
kernel VM by VM, then the records are written (one transaction) and the GUI file exported
from the result.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.v3vee.palacios.plugins.module_utils import guifile
from ansible_collections.v3vee.palacios.plugins.module_utils.checkpoint import Checkpoints, latest_recover_request
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import GuestConfigs
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import CONTENT_FIELDS, FIELDS, new_record
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import definition_of
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import BROKEN_REMEDY, broken_message, is_broken
from ansible_collections.v3vee.palacios.plugins.module_utils.reconcile import CATEGORIES, NOT_IN_INVENTORY, classify
from ansible_collections.v3vee.palacios.plugins.module_utils.recover import CONVERGE, SKIP, plan_recover
from ansible_collections.v3vee.palacios.plugins.module_utils.records import (
    StagedStore, link, plan_adopt, plan_import, plan_records, plan_reconcile)
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import VmJob, record_state

OPERATIONS = ('gui_import', 'vms', 'adopt', 'reconcile', 'recover', 'gui_export')


def summarize(classified):
    summary = dict((category, {'count': 0, 'names': []}) for category in CATEGORIES)
    for item in classified:
        summary[item['category']]['count'] += 1
        summary[item['category']]['names'].append(item['name'])
    return summary


def record_views(classified):
    views = []
    for item in classified:
        if item['record'] is None:
            continue
        view = dict((key, item['record'].get(key)) for key in FIELDS)
        view['category'] = item['category']
        view['state'] = item['entry'].state if item['entry'] is not None else 'inactive'
        views.append(view)
    return views


def _contents(records):
    return dict((r['name'], dict((k, r.get(k)) for k in CONTENT_FIELDS if k != 'name')) for r in records)


def export_lines(classified):
    """GUI lines for every record: dev and state from the kernel (gotcha 19: the GUI's own state
    drifts), an inactive VM with an empty dev and its desired state, a config-only VM with an
    empty image (the GUI can show it but not activate it). Records whose paths the format cannot
    carry are skipped and reported."""
    lines, skipped = [], []
    for item in classified:
        record, entry = item['record'], item['entry']
        if record is None:
            continue
        line = guifile.GuiLine(None, record['name'], record.get('config') or '',
                               entry.device if entry is not None else '',
                               guifile.gui_state(entry.state if entry is not None else record.get('desired_state')),
                               record.get('image') or '')
        problems = [p for p in (guifile.field_problem('name', line.name), guifile.field_problem('config', line.config),
                                guifile.field_problem('image', line.image)) if p]
        if problems:
            skipped.append({'name': line.name, 'reason': problems[0]})
            continue
        lines.append(line)
    return lines, skipped


class InventoryRun(object):
    def __init__(self, session, store, params):
        self.session = session
        self.host = session.host
        self.check_mode = session.host.check_mode
        self.params = params
        self.staged = StagedStore(store)
        self.store_path = session.settings.inventory_path
        self.result = {'changed': False}
        self.errors = []
        self.file_diff = None

    def warn(self, text):
        self.host.warnings.append(text)

    def run(self):
        snap = self.host.snapshot()
        guests = snap.guests
        before = self.staged.all()
        start_slots = dict((r['name'], r.get('slot')) for r in before)
        self.result['drift'] = dict((i['name'], i['drift']) for i in classify(before, guests) if i['drift'])

        params = self.params
        if params['gui_import']:
            self.gui_import(params['gui_import'], guests)
        if params['vms']:
            self.result['vms'] = plan_records(params['vms'], self.staged, guests, force=params['force'])
        if params['adopt']:
            self.result['adopt'] = plan_adopt(params['adopt'], self.staged, guests)
            for item in self.result['adopt']:
                if item['result'] in ('not_in_kernel', 'duplicate_names', 'broken_slot'):
                    devices = ' (%s)' % ', '.join(item['devices']) if item['devices'] else ''
                    self.warn('adopt %r: %s%s; not adopted.' % (item['name'], item['result'].replace('_', ' '), devices))
        if params['reconcile']:
            self.result['reconcile'] = plan_reconcile(self.staged, guests)
        # Inline configs the records now refer to go in place before recover may v3_create from them.
        configs = GuestConfigs(self.store_path, check_mode=self.check_mode)
        inline = self.inline_configs()
        written = sorted(item.path for item in inline.values() if configs.write(item))
        kernel_changed = False
        if params['recover']:
            kernel_changed = self.recover(guests, start_slots, inline)

        records_changed = self.staged.changed()
        if not self.check_mode:
            self.staged.flush()
        after = self.staged.all()
        removed = configs.prune(set(r.get('config') for r in before), set(r.get('config') for r in after))
        self.result['guest_configs'] = {'written': written, 'removed': removed}
        classified = classify(after, self.host.snapshot().guests)
        broken = [i['entry'] for i in classified if i['entry'] is not None and is_broken(i['entry'])]
        for entry in broken:
            self.warn(broken_message(entry))
        export_changed = False
        if params['gui_export']:
            export_changed = self.gui_export(params['gui_export'], classified)

        self.result.update(
            changed=records_changed or kernel_changed or export_changed or bool(written or removed),
            records=record_views(classified),
            summary=summarize(classified),
            not_in_inventory=[{'name': i['entry'].name, 'slot': i['entry'].index, 'device': i['entry'].device,
                               'state': i['entry'].state, 'broken': is_broken(i['entry'])}
                              for i in classified if i['category'] == NOT_IN_INVENTORY],
            broken_slots=[{'slot': e.index, 'name': e.name, 'device': e.device, 'remedy': BROKEN_REMEDY}
                          for e in broken],
        )
        diff = [{'before_header': 'inventory %s' % self.store_path, 'after_header': 'inventory %s' % self.store_path,
                 'before': _contents(before), 'after': _contents(after)}]
        if self.file_diff:
            diff.append(self.file_diff)
        self.result['diff'] = diff
        if self.errors:
            self.result['failed'] = True
            self.result['errors'] = self.errors
            self.result['msg'] = 'recover failed for %d VM(s): %s' % (
                len(self.errors), '; '.join('%s: %s' % (e['name'], e['msg']) for e in self.errors))
        return self.result

    # -- operations --------------------------------------------------------------------------
    def gui_import(self, path, guests):
        data = guifile.read(path)
        if data is None and path != self.params['gui_export']:
            raise V3veeError('gui_import: %s does not exist.' % path)
        lines, bad = guifile.parse(data or b'')
        report = plan_import(lines, self.staged, guests, os.path.dirname(os.path.abspath(path)),
                             self.params['import_conflict'])
        report['path'] = path
        report['bad_lines'] = bad
        for item in bad:
            self.warn('%s line %d not imported: %s.' % (path, item['line'], item['reason']))
        for conflict in report['conflicts']:
            if conflict['resolution'] != 'replaced':
                self.warn('%s line %d (%s) differs from the inventory in %s; the inventory record was kept%s.'
                          % (path, conflict['line'], conflict['name'], ', '.join(sorted(conflict['differences'])),
                             ' (%s)' % conflict['reason'] if conflict.get('reason') else ''))
        self.result['gui_import'] = report

    def inline_configs(self):
        """The config_xml items of vms and adopt that a record now refers to, by name."""
        out = {}
        for item in (self.params['vms'] or []) + (self.params['adopt'] or []):
            record = self.staged.get(item['name'])
            if item.get('inline') is not None and record is not None and record.get('config') == item['inline'].path:
                out[item['name']] = item['inline']
        return out

    def recover(self, guests, start_slots, inline):
        """Every record whose desired state is a kernel state, in one batch of Host.converge_all
        (one /proc read plans them all; waves verify them together; one failure stops no other)."""
        results = []
        jobs = []
        restores = []
        for item in plan_recover(self.staged.all(), guests, start_slots):
            out = {'name': item['name'], 'desired_state': item['desired_state'], 'action': item['action'],
                   'state_before': record_state(item['observed']) if item['observed'] else None,
                   'steps': item['steps'], 'changed': False, 'state': None, 'device': None, 'error': None,
                   'checkpoint': None}
            results.append(out)
            # A VM gone from the kernel whose latest checkpoint asks for it comes back from that checkpoint.
            request = latest_recover_request(self.staged.store.checkpoints(item['name'])) \
                if item['action'] == CONVERGE and item['observed'] == 'none' else None
            if item['action'] == SKIP:
                out.update(reason=item['reason'], state=out['state_before'], device=item['device'])
            elif request is not None:
                out['checkpoint'] = request['path']
                restores.append((out, request))
            else:
                # In check mode an inline config given in this run is not on disk yet: use its checked shape.
                shape = inline[item['name']].shape if item['name'] in inline else None
                jobs.append(VmJob(item['name'], item['desired_state'], shape=shape))
        outs = dict((out['name'], out) for out in results)
        kernel_changed = self.restore_checkpoints(restores)
        for job in self.host.converge_all(self.staged, jobs) if jobs else []:
            out = outs[job.name]
            if job.error is not None:
                out['error'] = str(job.error)
                self.errors.append({'name': job.name, 'msg': str(job.error)})
                # What the kernel shows now (a real run recorded it; check mode failed before any step).
                current = self.staged.get(job.name)
                out['device'] = current.get('device') if current else None
                out['state'] = current.get('observed_state') if current else None
                continue
            vm = job.result['vm']
            out.update(steps=job.result['steps'], changed=job.result['changed'], state=vm['state'],
                       device=vm['device'])
            kernel_changed = kernel_changed or bool(job.result['steps'])
            if self.check_mode:
                # Converge records nothing in check mode: record its prediction here, so that what
                # follows (export, the returned records) sees what the real run will leave.
                self.staged.put(link(job.name, definition_of(job.record), job.current, vm['desired_state'],
                                     job.record))
        self.result['recover'] = results
        return kernel_changed

    def restore_checkpoints(self, restores):
        """Restore each requested VM from its checkpoint (v3vee_checkpoint state=restored, into its
        desired state), before the batch: the batch then plans around the VMs restored (or predicted)."""
        changed = False
        for out, request in restores:
            ops = Checkpoints(self.host, self.staged, self.store_path, subprocess_runner,
                              kernel_log=self.session.settings.kernel_log, checkpoints=self.staged.store)
            record = self.staged.get(out['name'])
            try:
                result = ops.restore(out['name'], request['path'], request['store'], vm_state=out['desired_state'])
            except V3veeError as err:
                out.update(error=str(err), steps=ops.steps)
                self.errors.append({'name': out['name'], 'msg': 'restore from the checkpoint %s: %s'
                                    % (request['path'], err)})
                current = self.staged.get(out['name'])
                out['device'] = current.get('device') if current else None
                out['state'] = current.get('observed_state') if current else None
                changed = changed or bool(ops.host.tools.commands)
                continue
            vm = result['vm']
            out.update(steps=result['steps'], changed=True, state=vm['state'], device=vm['device'])
            changed = True
            if self.check_mode:
                self.staged.put(new_record(out['name'], definition_of(record), vm['slot'], vm['device'], vm['state'],
                                           out['desired_state'], previous=record))
        return changed

    def gui_export(self, path, classified):
        lines, skipped = export_lines(classified)
        for item in skipped:
            self.warn('gui_export: VM %r is not written to %s: %s.' % (item['name'], path, item['reason']))
        data = guifile.render(lines)
        current = guifile.read(path)
        changed = data != current
        if changed and not self.check_mode:
            guifile.write_atomic(path, data)
        self.result['gui_export'] = {'path': path, 'changed': changed, 'lines': len(lines), 'skipped': skipped}
        self.file_diff = {'before_header': path, 'after_header': path,
                          'before': (current or b'').decode('utf-8', 'replace'), 'after': data.decode('utf-8')}
        return changed
