# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet status page (role status_page): controller-side, standard library only.

`fleet_model()` turns each host's registered v3vee_facts result into one JSON-able dict (the
page's data, written beside it as JSON); `render_html()` turns that dict into one
self-contained HTML page (inline CSS and JS pinned by hash in a Content-Security-Policy, no
external asset, no network). Everything from a host (VM names, paths, kernel messages) is
hostile input: it is only ever written through `_esc()`.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import hashlib
import json
import os
import re

MiB = 1048576
MAX_VMS = 32  # Palacios MAX_VMS (linux_module/palacios.h): slots 0..31

# The Palacios GUI's three headings, in its order.
CATEGORIES = (
    ('active_inventory', 'Active, in inventory'),
    ('inactive_inventory', 'Inactive, in inventory'),
    ('not_in_inventory', 'Active, not in inventory'),
)
CATEGORY_LABELS = dict(CATEGORIES)

# State -> (symbol, css class). The symbol and the word make a state readable without colour.
# UNAVAILABLE is the kernel's "<unable to get data for this VM>" ghost line (a slot a crashed
# v3_create left behind, freed only by a reboot); UNKNOWN is a VM being reset.
STATES = {
    'running': (u'\u25b6', 'ok'),
    'paused': (u'\u2016', 'warn'),
    'stopped': (u'\u25a0', 'idle'),
    'inactive': (u'\u25cb', 'idle'),
    'ERROR': (u'\u2716', 'bad'),
    'UNAVAILABLE': (u'\u2620', 'bad'),
    'UNKNOWN': (u'\u21bb', 'warn'),
}
STATE_ORDER = ('running', 'paused', 'stopped', 'inactive', 'UNKNOWN', 'ERROR', 'UNAVAILABLE')
STATE_LABELS = {'UNAVAILABLE': 'ghost (no data)', 'UNKNOWN': 'resetting'}

# Host status -> (symbol, label, css class)
HOST_STATUSES = {
    'up': (u'\u2714', 'up', 'ok'),
    'not_loaded': (u'\u25cb', 'module not loaded', 'warn'),
    'unreachable': (u'\u2716', 'unreachable', 'bad'),
    'failed': (u'\u26a0', 'facts failed', 'bad'),
}
HOST_STATUS_ORDER = ('up', 'not_loaded', 'unreachable', 'failed')

_CONTROL = re.compile(u'[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]')
_HOST_ID = re.compile(r'[^A-Za-z0-9_.-]')


# ------------------------------------------------------------------------------------------
# the model

def _plain(value):
    """Plain dicts/lists/scalars (Ansible may hand over lazy or tagged containers)."""
    if isinstance(value, dict) or hasattr(value, 'items'):
        return dict((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def collection_version():
    """The version of this collection: MANIFEST.json when installed, galaxy.yml in a checkout."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        with open(os.path.join(root, 'MANIFEST.json')) as handle:
            return json.load(handle)['collection_info']['version']
    except (IOError, OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(root, 'galaxy.yml')) as handle:
            for line in handle:
                if line.startswith('version:'):
                    return line.split(':', 1)[1].strip().strip('"\'')
    except (IOError, OSError):
        pass
    return None


def _host_status(result):
    if not result:
        return 'failed', 'No v3vee_facts result for this host (the task did not run on it).'
    if result.get('unreachable'):
        return 'unreachable', result.get('msg') or 'unreachable'
    facts = (result.get('ansible_facts') or {}).get('v3vee')
    if result.get('failed') or not facts:
        return 'failed', result.get('msg') or 'v3vee_facts returned no facts.'
    if not facts.get('module_loaded'):
        reason = 'The Palacios kernel module is not loaded (no v3-info in %s).' % (
            (facts.get('paths') or {}).get('proc_dir') or '/proc/v3vee')
        tools = facts.get('tools')
        if tools is not None and not tools.get('found'):
            reason += ' No v3 tools were found either: Palacios is not installed here.'
        return 'not_loaded', reason
    return 'up', None


def _memory(memory, sizes):
    if not memory:
        return None

    def fits(items):
        by_size = dict((f['mem_mb'], f['vms']) for f in items or [])
        return [{'mem_mb': mb, 'vms': by_size.get(mb)} for mb in sizes]

    nodes = []
    for node in memory.get('nodes') or []:
        pool, free = node.get('pool_bytes') or 0, node.get('free_bytes') or 0
        nodes.append({
            'node': node.get('node'),
            'pool_bytes': pool,
            'reserved_bytes': node.get('reserved_bytes') or 0,
            # in use: guests and Palacios' own allocations (the seed pool's first pages)
            'used_bytes': max(pool - free, 0),
            'free_bytes': free,
            'free_blocks': node.get('free_blocks'),
            'largest_free_block': node.get('largest_free_block'),
            'fits': fits(node.get('fits')),
        })
    return {
        'block_size': memory.get('block_size'),
        'pool_bytes': sum(n['pool_bytes'] for n in nodes),
        'reserved_bytes': sum(n['reserved_bytes'] for n in nodes),
        'used_bytes': sum(n['used_bytes'] for n in nodes),
        'free_bytes': sum(n['free_bytes'] for n in nodes),
        'free_blocks': memory.get('free_blocks'),
        'fits': fits(memory.get('fits')),
        'nodes': nodes,
    }


def _slots(host, vms):
    """The kernel's VM slots, each free, or held by a VM (ERROR and ghost slots marked broken)."""
    count = (host or {}).get('max_vms') or MAX_VMS
    slots = [{'slot': i, 'state': 'free', 'vms': []} for i in range(count)]
    for vm in vms:
        slot = vm.get('slot')
        if vm.get('in_kernel') and isinstance(slot, int) and 0 <= slot < count:
            cell = slots[slot]
            cell['vms'].append(vm['name'])
            cell['vm_state'] = vm['state']
            cell['state'] = 'broken' if vm['state'] in ('ERROR', 'UNAVAILABLE') else 'used'
    return slots


def _vm(vm):
    definition = vm.get('config') or vm.get('image')
    return {
        'name': vm.get('name'),
        'category': vm.get('category'),
        'state': vm.get('state'),
        'slot': vm.get('slot'),
        'device': vm.get('device'),
        'vcores': vm.get('vcores'),
        'mem_mb': vm.get('mem_mb'),
        'definition': definition,
        'definition_kind': 'config' if vm.get('config') else 'image' if vm.get('image') else None,
        'config_options': vm.get('config_options') or {},
        'desired_state': vm.get('desired_state'),
        'drift': list(vm.get('drift') or []),
        'in_inventory': bool(vm.get('in_inventory')),
        'in_kernel': bool(vm.get('in_kernel')),
        'duplicate_name': bool(vm.get('duplicate_name')),
    }


def _messages(telemetry):
    out = []
    for msg in (telemetry or {}).get('messages') or []:
        out.append(dict((key, msg.get(key)) for key in
                        ('time', 'uptime', 'host', 'pcore', 'vm', 'vcore', 'location', 'message')))
    return out


def host_model(name, result, sizes):
    """One host's part of the page, from its registered v3vee_facts result."""
    result = _plain(result) if result else None
    status, reason = _host_status(result)
    facts = ((result or {}).get('ansible_facts') or {}).get('v3vee') or {}
    vms = [_vm(vm) for vm in facts.get('vms') or []]
    problems = list(facts.get('problems') or [])
    if reason and status in ('unreachable', 'failed'):
        problems.insert(0, reason)
    if facts.get('module_loaded') and not facts.get('control_device_present'):
        problems.append('The module is loaded but the control device v3vee is missing: Palacios failed to '
                        'initialise (see the kernel messages).')
    missing = (facts.get('tools') or {}).get('missing') or []
    if status == 'up' and missing:
        problems.append('v3 tools not found: %s.' % ', '.join(missing))
    telemetry = facts.get('telemetry') or {}
    host = facts.get('host')
    return {
        'name': name,
        'status': status,
        'reason': reason,
        'backend': facts.get('backend'),
        'module_loaded': bool(facts.get('module_loaded')),
        'host': host and dict((key, host.get(key)) for key in (
            'nodes', 'cpus', 'runtime_block_size', 'max_vms', 'vm_slots_used', 'vm_slots_free')),
        'memory': _memory(facts.get('memory'), sizes),
        'slots': _slots(host, vms) if host else [],
        'vms': vms,
        'vm_counts': {
            'total': len(vms),
            'by_state': _count(vm['state'] for vm in vms),
            'by_category': dict((cat, sum(1 for vm in vms if vm['category'] == cat)) for cat, _label in CATEGORIES),
            'drifted': sum(1 for vm in vms if vm['drift']),
        },
        'problems': problems,
        'messages': _messages(telemetry),
        'telemetry_source': telemetry.get('path') or ' '.join(telemetry.get('command') or []) or None,
        'telemetry_truncated': bool(telemetry.get('truncated')),
    }


def _count(values):
    counts = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _summary(hosts, sizes):
    up = [h for h in hosts if h['memory']]
    by_state, by_category = {}, dict((cat, 0) for cat, _label in CATEGORIES)
    for host in hosts:
        for state, count in host['vm_counts']['by_state'].items():
            by_state[state] = by_state.get(state, 0) + count
        for cat, count in host['vm_counts']['by_category'].items():
            by_category[cat] = by_category.get(cat, 0) + count
    return {
        'hosts': dict([('total', len(hosts))]
                      + [(s, sum(1 for h in hosts if h['status'] == s)) for s in HOST_STATUS_ORDER]),
        'vms': {'total': sum(h['vm_counts']['total'] for h in hosts), 'by_state': by_state,
                'by_category': by_category},
        'memory': dict((key, sum(h['memory'][key] for h in up))
                       for key in ('pool_bytes', 'reserved_bytes', 'used_bytes', 'free_bytes')),
        'fits': [{'mem_mb': mb,
                  'vms': sum(f['vms'] or 0 for h in up for f in h['memory']['fits'] if f['mem_mb'] == mb)}
                 for mb in sizes],
        'drifted': sum(h['vm_counts']['drifted'] for h in hosts),
        'problems': sum(len(h['problems']) for h in hosts),
    }


def fleet_model(results, hosts, title='Palacios fleet', vm_mem_mb=(128,), refresh_seconds=0,
                stale_after_seconds=0, generated_at=None, version=None):
    """The page's data. `results`: host name -> registered v3vee_facts result (None if missing),
    `hosts`: the host names in inventory order."""
    sizes = [int(mb) for mb in vm_mem_mb]
    if generated_at is None:
        generated_at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    host_models = [host_model(str(name), results.get(name), sizes) for name in hosts]
    return {
        'title': str(title),
        'generated_at': generated_at,
        'collection': 'v3vee.palacios',
        'collection_version': version if version is not None else collection_version(),
        'vm_mem_mb': sizes,
        'refresh_seconds': int(refresh_seconds or 0),
        'stale_after_seconds': int(stale_after_seconds or 0),
        'summary': _summary(host_models, sizes),
        'hosts': host_models,
    }


# ------------------------------------------------------------------------------------------
# the page

def _esc(value):
    """Text for HTML: escaped, NUL/control characters and lone surrogates made visible."""
    if value is None:
        return ''
    text = value if isinstance(value, str) else str(value)
    text = text.encode('utf-8', 'backslashreplace').decode('utf-8')
    text = _CONTROL.sub(lambda m: '\\x%02x' % ord(m.group(0)) if ord(m.group(0)) < 256
                        else '\\u%04x' % ord(m.group(0)), text)
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace('"', '&quot;').replace("'", '&#x27;'))


def _size(num):
    if num is None:
        return u'\u2014'
    for unit, div in (('GiB', 1024 * MiB), ('MiB', MiB), ('KiB', 1024)):
        if abs(num) >= div:
            value = num / float(div)
            return ('%d %s' % (value, unit)) if value == int(value) else ('%.1f %s' % (value, unit))
    return '%d B' % num


def _host_id(name):
    return 'host-' + _HOST_ID.sub(lambda m: '_%x' % ord(m.group(0)), name)


def _state_badge(state):
    symbol, css = STATES.get(state, ('?', 'warn'))
    return u'<span class="st %s"><span class="sym" aria-hidden="true">%s</span> %s</span>' % (
        css, symbol, _esc(STATE_LABELS.get(state, state)))


def _host_badge(status):
    symbol, label, css = HOST_STATUSES[status]
    return u'<span class="st %s"><span class="sym" aria-hidden="true">%s</span> %s</span>' % (css, symbol, label)


def _bar(used, free, total, label):
    """A two-part bar as SVG (attributes, not inline styles: the CSP forbids those)."""
    total = total or 1
    used_w = round(100.0 * used / total, 2)
    free_w = round(100.0 * free / total, 2)
    return (u'<svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label="%s">'
            u'<rect class="used" x="0" y="0" width="%s" height="6"/>'
            u'<rect class="free" x="%s" y="0" width="%s" height="6"/></svg>') % (
        _esc(label), used_w, used_w, free_w)


def _fits(fits):
    items = [u'%s \u00d7 %d MiB' % ('?' if f['vms'] is None else f['vms'], f['mem_mb']) for f in fits]
    return u'<span class="fits">room for %s more VMs</span>' % _esc(', '.join(items)) if items else ''


def _counts_list(counts, order, labels):
    keys = [k for k in order if counts.get(k)] + sorted(k for k in counts if k not in order and counts[k])
    if not keys:
        return u'<span class="muted">none</span>'
    return u''.join(u'<li>%s <b>%d</b></li>' % (labels(k), counts[k]) for k in keys)


def _sortable(table_id, headers, rows, caption):
    """A table the inline script can sort; rows are (cells, sort keys) already in the GUI's order."""
    head = u''.join(u'<th scope="col"><button type="button" data-col="%d">%s</button></th>' % (i, _esc(h))
                    for i, h in enumerate(headers))
    body = []
    for cells, keys, css in rows:
        tds = u''.join(u'<td data-label="%s" data-sort="%s">%s</td>' % (_esc(h), _esc(k), c)
                       for h, c, k in zip(headers, cells, keys))
        body.append(u'<tr class="%s">%s</tr>' % (css, tds))
    return (u'<table class="sortable" id="%s"><caption>%s</caption><thead><tr>%s</tr></thead>'
            u'<tbody>%s</tbody></table>') % (table_id, _esc(caption), head, u''.join(body))


def _summary_html(model):
    s = model['summary']
    hosts, vms, mem = s['hosts'], s['vms'], s['memory']
    host_items = u''.join(u'<li>%s <b>%d</b></li>' % (_host_badge(k), hosts[k]) for k in HOST_STATUS_ORDER)
    states = _counts_list(vms['by_state'], STATE_ORDER, _state_badge)
    cats = u''.join(u'<li>%s <b>%d</b></li>' % (_esc(label), vms['by_category'].get(cat, 0))
                    for cat, label in CATEGORIES)
    drift_css = 'warn' if s['drifted'] else 'ok'
    drift_sym = u'\u26a0' if s['drifted'] else u'\u2714'
    return u''.join([
        u'<section class="summary" aria-label="Fleet summary">',
        u'<div class="card panel" id="sum-hosts"><h2>Hosts <b>%d</b></h2><ul class="kv">%s</ul></div>' % (
            hosts['total'], host_items),
        u'<div class="card panel" id="sum-vms"><h2>VMs <b>%d</b></h2><h3>by state</h3><ul class="kv">%s</ul>'
        u'<h3>by category</h3><ul class="kv">%s</ul></div>' % (vms['total'], states, cats),
        u'<div class="card panel" id="sum-memory"><h2>Memory</h2>%s<ul class="kv rows">'
        u'<li>reserved <b>%s</b></li><li><span class="key used"></span>in use <b>%s</b></li>'
        u'<li><span class="key free"></span>free <b>%s</b></li></ul>%s</div>' % (
            _bar(mem['used_bytes'], mem['free_bytes'], mem['pool_bytes'], 'fleet memory in use'),
            _size(mem['reserved_bytes']), _size(mem['used_bytes']), _size(mem['free_bytes']),
            _fits(s['fits'])),
        u'<div class="card panel" id="sum-drift"><h2>Drift and problems</h2><p><span class="st %s">'
        u'<span class="sym" aria-hidden="true">%s</span> <b>%d</b> VM%s drifted</span></p>'
        u'<p><span class="st %s"><span class="sym" aria-hidden="true">%s</span> <b>%d</b> problem%s</span></p>'
        u'</div>' % (drift_css, drift_sym, s['drifted'], '' if s['drifted'] == 1 else 's',
                     'bad' if s['problems'] else 'ok', u'\u26a0' if s['problems'] else u'\u2714',
                     s['problems'], '' if s['problems'] == 1 else 's'),
        u'</section>',
    ])


def _hosts_table(model):
    rows = []
    for order, h in enumerate(model['hosts']):
        counts = h['vm_counts']
        mem = h['memory']
        cells = [
            u'<a href="#%s">%s</a>' % (_host_id(h['name']), _esc(h['name'])),
            _host_badge(h['status']),
            _esc(h['backend'] or u'\u2014'),
            str(counts['total']),
            str(counts['by_state'].get('running', 0)),
            str(counts['drifted']),
            _esc(_size(mem['free_bytes'])) if mem else u'\u2014',
            str(len(h['problems'])),
        ]
        keys = [order, HOST_STATUS_ORDER.index(h['status']), h['backend'] or '', counts['total'],
                counts['by_state'].get('running', 0), counts['drifted'], mem['free_bytes'] if mem else -1,
                len(h['problems'])]
        rows.append((cells, keys, 'host-row ' + h['status']))
    return _sortable('hosts-table', ['Host', 'Status', 'Backend', 'VMs', 'Running', 'Drifted', 'Free memory',
                                     'Problems'], rows, 'Hosts (the inventory order; select a heading to sort)')


def _slots_html(slots):
    cells = []
    for cell in slots:
        if cell['state'] == 'free':
            cells.append(u'<li class="slot free" title="slot %d: free"><span>%d</span></li>' % (
                cell['slot'], cell['slot']))
            continue
        symbol = STATES.get(cell.get('vm_state'), ('?', 'warn'))[0]
        title = u'slot %d: %s (%s)' % (cell['slot'], ', '.join(cell['vms']),
                                       STATE_LABELS.get(cell.get('vm_state'), cell.get('vm_state')))
        cells.append(u'<li class="slot %s %s" title="%s"><span>%d</span><span class="sym">%s</span></li>' % (
            cell['state'], STATES.get(cell.get('vm_state'), ('', 'warn'))[1], _esc(title), cell['slot'], symbol))
    used = sum(1 for c in slots if c['state'] != 'free')
    broken = sum(1 for c in slots if c['state'] == 'broken')
    return (u'<div class="slots-wrap"><h3>VM slots <b>%d</b>/%d used%s</h3><ol class="slots" aria-label="VM slots">'
            u'%s</ol></div>') % (used, len(slots), (u', <b class="bad-text">%d broken</b>' % broken) if broken else '',
                                 u''.join(cells))


def _memory_html(mem):
    if not mem:
        return u''
    nodes = []
    for node in mem['nodes']:
        nodes.append(
            u'<div class="node"><h4>NUMA node %s <span class="muted">reserved %s</span></h4>%s'
            u'<p class="legend"><span class="key used"></span>in use %s <span class="key free"></span>free %s '
            u'<span class="muted">(%s whole block%s free)</span></p><p>%s</p></div>' % (
                _esc(node['node']), _size(node['reserved_bytes']),
                _bar(node['used_bytes'], node['free_bytes'], node['pool_bytes'], 'node %s memory in use' % node['node']),
                _size(node['used_bytes']), _size(node['free_bytes']), _esc(node['free_blocks']),
                '' if node['free_blocks'] == 1 else 's', _fits(node['fits'])))
    return (u'<div class="memory"><h3>Memory <span class="muted">block %s</span></h3>%s'
            u'<p>host: %s</p></div>') % (_size(mem['block_size']), u''.join(nodes), _fits(mem['fits']))


def _drift_html(vm):
    if vm['drift']:
        return u'<span class="st warn"><span class="sym" aria-hidden="true">\u26a0</span> %s</span>' % _esc(
            ', '.join(vm['drift']))
    if vm['in_inventory']:
        return u'<span class="st ok"><span class="sym" aria-hidden="true">\u2714</span> in sync</span>'
    return u'<span class="muted">not recorded</span>'


def _vm_table(h):
    rows = []
    for order, vm in enumerate(h['vms']):
        slot = u'\u2014' if vm['slot'] is None else u'<span class="nw">%d <span class="muted">%s</span></span>' % (
            vm['slot'], _esc(vm['device']))
        definition = u'<span class="path">%s</span>' % _esc(vm['definition'] or u'\u2014')
        if vm['config_options']:
            definition += u' <span class="muted">%s</span>' % _esc(
                ' '.join('%s=%s' % (k, vm['config_options'][k]) for k in sorted(vm['config_options'])))
        name = u'<bdi>%s</bdi>' % _esc(vm['name'])
        if vm['duplicate_name']:
            name += u' <span class="st warn">duplicate name</span>'
        cells = [name, u'<span class="nw">%s</span>' % _esc(CATEGORY_LABELS.get(vm['category'], vm['category'])),
                 _state_badge(vm['state']), slot,
                 _esc(vm['vcores'] if vm['vcores'] is not None else u'\u2014'),
                 _esc(_size(vm['mem_mb'] * MiB) if vm['mem_mb'] is not None else u'\u2014'),
                 definition, _esc(vm['desired_state'] or u'\u2014'), _drift_html(vm)]
        keys = [vm['name'], order, STATE_ORDER.index(vm['state']) if vm['state'] in STATE_ORDER else 99,
                vm['slot'] if vm['slot'] is not None else 99, vm['vcores'] or 0, vm['mem_mb'] or 0,
                vm['definition'] or '', vm['desired_state'] or '', len(vm['drift'])]
        css = 'vm %s%s' % (STATES.get(vm['state'], ('', 'warn'))[1], ' drifted' if vm['drift'] else '')
        rows.append((cells, keys, css))
    if not rows:
        return u'<p class="muted">No VMs in the kernel or the inventory.</p>'
    return _sortable('vms-' + _host_id(h['name']), ['Name', 'Category', 'State', 'Slot', 'vcores', 'Memory',
                                                    'Definition', 'Desired', 'Drift'], rows, 'VMs')


def _messages_html(h):
    if not h['messages']:
        source = h['telemetry_source']
        return u'<p class="muted">No Palacios kernel messages%s.</p>' % (
            (u' in %s' % _esc(source)) if source else '')
    items = []
    for msg in h['messages']:
        when = msg['time'] or ('[%12.6f]' % msg['uptime'] if msg['uptime'] is not None else '')
        scope = u''
        if msg['vm'] is not None:
            scope = u'<span class="vmtag">VM <bdi>%s</bdi>%s</span> ' % (
                _esc(msg['vm']), (u' vcore %s' % _esc(msg['vcore'])) if msg['vcore'] is not None else '')
        location = (u'<span class="muted">%s</span> ' % _esc(msg['location'])) if msg['location'] else ''
        items.append(u'<li class="%s"><span class="when">%s</span> <span class="muted">pcore %s</span> %s%s'
                     u'<span class="text">%s</span></li>' % (
                         'vm-msg' if msg['vm'] is not None else 'host-msg', _esc(when), _esc(msg['pcore']),
                         scope, location, _esc(msg['message'])))
    return (u'<ol class="kmsg" aria-label="Palacios kernel messages, newest last">%s</ol>'
            u'<p class="muted">%d messages, newest last%s%s.</p>') % (
        u''.join(items), len(h['messages']), (u', from %s' % _esc(h['telemetry_source'])) if h['telemetry_source'] else '',
        u'; older ones left out' if h['telemetry_truncated'] else '')


def _host_html(h):
    facts_line = []
    if h['backend']:
        backend = {'simulator': 'simulated', 'palacios': 'real Palacios'}.get(h['backend'], h['backend'])
        facts_line.append(u'backend <b>%s</b>' % _esc(backend))
    if h['status'] in ('up', 'not_loaded'):
        facts_line.append(u'module <b>%s</b>' % ('loaded' if h['module_loaded'] else 'not loaded'))
    if h['host']:
        facts_line.append(u'%s CPUs, %s NUMA node%s' % (_esc(h['host']['cpus']), _esc(h['host']['nodes']),
                                                        '' if h['host']['nodes'] == 1 else 's'))
    problems = u''
    if h['problems']:
        problems = u'<div class="problems"><h3>Problems</h3><ul>%s</ul></div>' % u''.join(
            u'<li><span class="sym" aria-hidden="true">\u26a0</span> %s</li>' % _esc(p) for p in h['problems'])
    parts = [
        u'<section class="host panel %s" id="%s" data-host="%s">' % (h['status'], _host_id(h['name']), _esc(h['name'])),
        u'<header><h2><bdi>%s</bdi></h2> %s <span class="facts">%s</span></header>' % (
            _esc(h['name']), _host_badge(h['status']), u' \u00b7 '.join(facts_line)),
        problems,
    ]
    if h['status'] == 'not_loaded':
        parts.append(u'<p class="reason">%s</p>' % _esc(h['reason']))
    if h['memory'] or h['slots']:
        parts.append(u'<div class="grid2">%s%s</div>' % (_memory_html(h['memory']), _slots_html(h['slots'])))
    if h['status'] in ('up', 'not_loaded'):
        parts.append(u'<div class="vms">%s</div>' % _vm_table(h))
        parts.append(u'<div class="messages"><h3>Kernel messages</h3>%s</div>' % _messages_html(h))
    parts.append(u'</section>')
    return u''.join(parts)


CSS = u"""
:root{--bg:#f4f5f7;--panel:#fff;--fg:#1d2430;--muted:#5f6b7a;--line:#d8dde4;--ok:#1f7a3a;--okbg:#e3f4e8;
--warn:#8a5a00;--warnbg:#fff1d6;--bad:#b3261e;--badbg:#fde4e1;--idle:#45505e;--idlebg:#eceff3;--used:#3d6fb6;
--free:#c9d7ea;--accent:#2f5d9e}
@media (prefers-color-scheme:dark){:root{--bg:#14181e;--panel:#1d232b;--fg:#e4e8ee;--muted:#9aa6b5;--line:#323b47;
--ok:#7dd69a;--okbg:#16321f;--warn:#f1c36b;--warnbg:#3a2d12;--bad:#ff9a8f;--badbg:#431c19;--idle:#c2cad4;
--idlebg:#2a323c;--used:#6f9fe0;--free:#33465f;--accent:#8db5ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"DejaVu Sans",sans-serif}
main,header.top{max-width:1500px;margin:0 auto;padding:0 16px}
header.top{padding-top:14px}
h1{font-size:1.5em;margin:0 0 2px}
h2{font-size:1.15em;margin:0}
h3{font-size:.95em;margin:12px 0 6px;color:var(--muted);font-weight:600}
h4{font-size:.9em;margin:8px 0 4px}
a{color:var(--accent)}
.meta{color:var(--muted);margin:0 0 12px}
.muted{color:var(--muted)}
.stale{display:none;background:var(--badbg);color:var(--bad);border:1px solid var(--bad);border-radius:6px;
padding:8px 12px;margin:0 0 12px;font-weight:600}
.stale.on{display:block}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;min-width:0;overflow-wrap:break-word}

.summary{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:12px;margin-bottom:12px}
.card{padding:12px 14px}
.card h2 b{font-size:1.2em}
ul.kv{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px}
ul.kv li{white-space:nowrap}
ul.kv.rows{display:block}ul.kv.rows .key{margin-left:0}
.st{display:inline-block;border-radius:4px;padding:0 6px;font-weight:600;white-space:nowrap}
.st.ok{color:var(--ok);background:var(--okbg)}.st.warn{color:var(--warn);background:var(--warnbg)}
.st.bad{color:var(--bad);background:var(--badbg)}.st.idle{color:var(--idle);background:var(--idlebg)}
.bad-text{color:var(--bad)}
.reason{color:var(--warn);margin:4px 0}
.nw{white-space:nowrap}
.sym{font-weight:700}
svg.bar{display:block;width:100%;height:14px;border-radius:3px;margin:6px 0;overflow:hidden}
svg.bar .used{fill:var(--used)}svg.bar .free{fill:var(--free)}
.key{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 8px;vertical-align:-1px}
.key.used{background:var(--used)}.key.free{background:var(--free)}
.legend{margin:0}.fits{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:.93em}
caption{text-align:left;color:var(--muted);font-weight:600;padding:4px 0}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th button{font:inherit;font-weight:700;color:inherit;background:none;border:0;padding:0;cursor:pointer}
th[aria-sort=ascending] button::after{content:" \\25b2"}th[aria-sort=descending] button::after{content:" \\25bc"}
tr.drifted td:first-child{box-shadow:inset 3px 0 var(--warn)}
#hosts-table{background:var(--panel);border:1px solid var(--line);border-radius:8px;margin-bottom:12px}
#hosts-table caption{padding:8px 10px}
section.host{padding:12px 14px;margin:0 0 14px}
section.host>header{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 12px;margin-bottom:6px}
section.host.unreachable,section.host.failed{border-left:4px solid var(--bad)}
section.host.not_loaded{border-left:4px solid var(--warn)}
.facts{color:var(--muted)}
.grid2{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:0 24px}
.problems ul{margin:0;padding-left:0;list-style:none}.problems li{color:var(--bad)}
ol.slots{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(16,minmax(0,1fr));gap:3px}
.slot{border:1px solid var(--line);border-radius:3px;text-align:center;font-size:.75em;line-height:1.2;padding:2px 0;
min-height:2.6em;display:flex;flex-direction:column;justify-content:center}
.slot.free{color:var(--muted);background:repeating-linear-gradient(135deg,transparent 0 4px,var(--idlebg) 4px 6px)}
.slot.used.ok{background:var(--okbg);color:var(--ok)}.slot.used.warn{background:var(--warnbg);color:var(--warn)}
.slot.used.idle{background:var(--idlebg);color:var(--idle)}
.slot.broken{background:var(--badbg);color:var(--bad);border:2px dashed var(--bad)}
ol.kmsg{margin:0;padding:6px 8px;list-style:none;font:12px/1.45 ui-monospace,"DejaVu Sans Mono",monospace;
background:var(--bg);border-radius:6px;max-height:22em;overflow-y:auto}
ol.kmsg li{white-space:pre-wrap;overflow-wrap:anywhere}
ol.kmsg li.vm-msg{border-left:3px solid var(--accent);padding-left:5px}
.vmtag{font-weight:700;color:var(--accent)}
.vmtag::before{content:"\\25c6 "}
@media screen and (max-width:760px){
 .grid2{grid-template-columns:minmax(0,1fr)}
 .path{overflow-wrap:anywhere}
 ol.slots{grid-template-columns:repeat(8,minmax(0,1fr))}
 table.sortable thead{display:none}
 table.sortable,table.sortable tbody,table.sortable tr,table.sortable td{display:block;width:100%}
 table.sortable tr{border-bottom:2px solid var(--line);padding:4px 0}
 table.sortable td{border:0;padding:1px 8px;display:grid;grid-template-columns:7.5em minmax(0,1fr);gap:8px}
 table.sortable td::before{content:attr(data-label);font-weight:600;color:var(--muted)}
 table.sortable td>*{justify-self:start}
 table.sortable caption{display:block}
 td .st{white-space:normal}
}
@media print{
 :root{--bg:#fff;--panel:#fff;--fg:#000;--muted:#333;--line:#999}
 body{font-size:10pt}
 .stale,.noprint{display:none!important}
 th button::after{content:""!important}
 section.host{break-inside:avoid-page}
 ol.kmsg{max-height:none;overflow:visible}
 a{color:inherit;text-decoration:none}
}
"""

# Sorting by column (numbers as numbers), the page's age, and the "stale" warning.
JS = u"""
(function(){
function key(td){var v=td.getAttribute('data-sort');var n=Number(v);return v!==''&&!isNaN(n)?n:v.toLowerCase();}
document.querySelectorAll('table.sortable').forEach(function(table){
 table.querySelectorAll('th button').forEach(function(button){
  button.addEventListener('click',function(){
   var th=button.parentNode,col=Number(button.getAttribute('data-col'));
   var dir=th.getAttribute('aria-sort')==='ascending'?'descending':'ascending';
   table.querySelectorAll('th').forEach(function(o){o.removeAttribute('aria-sort');});
   th.setAttribute('aria-sort',dir);
   var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
   rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
    var c=(typeof x===typeof y)?(x<y?-1:x>y?1:0):(typeof x==='number'?-1:1);return dir==='ascending'?c:-c;});
   rows.forEach(function(r){body.appendChild(r);});
  });
 });
});
var t=document.getElementById('generated');
function age(){
 var s=Math.max(0,Math.round((Date.now()-Date.parse(t.getAttribute('datetime')))/1000));
 document.getElementById('age').textContent=s<90?s+' s ago':s<5400?Math.round(s/60)+' min ago':Math.round(s/3600)+' h ago';
 var limit=Number(document.body.getAttribute('data-stale-after'));
 var banner=document.getElementById('stale');
 if(limit>0&&s>limit){banner.className='stale on';banner.textContent='\\u26a0 Stale: this page was generated '+
  document.getElementById('age').textContent+'. Is the status timer still running?';}
}
age();setInterval(age,15000);
// newest last: show the newest kernel messages without scrolling
document.querySelectorAll('ol.kmsg').forEach(function(l){l.scrollTop=l.scrollHeight;});
})();
"""


def _csp_hash(text):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')


# No network at all: nothing may be fetched, only this page's own style and script run.
CSP = ("default-src 'none'; style-src %s; script-src %s; img-src data:; base-uri 'none'; form-action 'none'"
       % (_csp_hash(CSS), _csp_hash(JS)))


def render_html(model):
    """The self-contained page for a fleet_model() dict."""
    refresh = model.get('refresh_seconds') or 0
    summary = model['summary']
    version = model.get('collection_version')
    meta = [u'generated <time id="generated" datetime="%s">%s</time> (<span id="age">just now</span>)' % (
        _esc(model['generated_at']), _esc(model['generated_at'])),
        u'by %s %s' % (_esc(model['collection']), _esc(version or 'unknown version')),
        u'%d host%s' % (summary['hosts']['total'], '' if summary['hosts']['total'] == 1 else 's')]
    if refresh:
        meta.append(u'reloads every %d s' % refresh)
    return u''.join([
        u'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        u'<meta http-equiv="Content-Security-Policy" content="%s">' % _esc(CSP),
        u'<meta name="viewport" content="width=device-width, initial-scale=1">',
        (u'<meta http-equiv="refresh" content="%d">' % refresh) if refresh else u'',
        u'<meta name="generator" content="%s %s">' % (_esc(model['collection']), _esc(version or '')),
        u'<title>%s</title><style>%s</style></head>' % (_esc(model['title']), CSS),
        u'<body data-stale-after="%d">' % (model.get('stale_after_seconds') or 0),
        u'<header class="top"><h1>%s</h1><p class="meta">%s</p>'
        u'<div id="stale" class="stale" role="alert"></div></header>' % (_esc(model['title']), u' \u00b7 '.join(meta)),
        u'<main>', _summary_html(model), _hosts_table(model),
        u''.join(_host_html(h) for h in model['hosts']),
        u'</main><script>%s</script></body></html>\n' % JS,
    ])
