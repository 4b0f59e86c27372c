"""The status page's model and HTML (plugins/plugin_utils/status_page.py) and its filters."""
import base64
import hashlib
import json
import os
import re
from html.parser import HTMLParser

import yaml

from ansible_collections.v3vee.palacios.plugins.filter.status_page import FilterModule
from ansible_collections.v3vee.palacios.plugins.plugin_utils import status_page as sp

MiB = 1048576
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
HOSTILE = '<script>alert("x")</script>&\'"'


def vm(name, state, category='active_inventory', slot=None, drift=(), **extra):
    in_kernel = slot is not None
    fact = {'name': name, 'category': category, 'state': state, 'slot': slot, 'in_kernel': in_kernel,
            'in_inventory': category != 'not_in_inventory', 'device': '/dev/v3-vm%d' % slot if in_kernel else None,
            'vcores': 1 if in_kernel else None, 'mem_mb': 128 if in_kernel else None,
            'config': '/srv/%s.xml' % name, 'image': None, 'config_options': {}, 'desired_state': 'running',
            'drift': list(drift), 'duplicate_name': False}
    fact.update(extra)
    return fact


def node(number, pools, free, free_blocks, fits):
    return {'node': number, 'pool_bytes': pools, 'reserved_bytes': pools - 4 * MiB, 'free_bytes': free,
            'free_blocks': free_blocks, 'largest_free_block': 128 * MiB, 'fits': fits}


def up_result(vms, messages=(), nodes=None, fits=None, problems=()):
    nodes = nodes or [node(0, 516 * MiB, 260 * MiB, 2, [{'mem_mb': 128, 'blocks_per_vm': 1, 'vms': 2}])]
    return {'changed': False, 'ansible_facts': {'v3vee': {
        'module_loaded': True, 'control_device_present': True, 'backend': 'simulator', 'problems': list(problems),
        'paths': {'proc_dir': '/proc/v3vee'}, 'tools': {'missing': []},
        'host': {'nodes': len(nodes), 'cpus': 4, 'runtime_block_size': 128 * MiB, 'max_vms': 32,
                 'vm_slots_used': 0, 'vm_slots_free': 32},
        'memory': {'block_size': 128 * MiB, 'nodes': nodes, 'free_blocks': sum(n['free_blocks'] for n in nodes),
                   'fits': fits or [{'mem_mb': 128, 'blocks_per_vm': 1, 'vms_by_memory': 2, 'free_slots': 30, 'vms': 2}]},
        'vms': vms, 'telemetry': {'messages': list(messages), 'path': '/var/log/kern.log', 'truncated': False}}}}


def unloaded_result():
    return {'ansible_facts': {'v3vee': {'module_loaded': False, 'control_device_present': False, 'backend': 'palacios',
                                        'problems': [], 'paths': {'proc_dir': '/proc/v3vee'}, 'host': None,
                                        'memory': None, 'vms': [vm('spare', 'inactive', 'inactive_inventory')]}}}


UNREACHABLE = {'unreachable': True, 'changed': False,
               'msg': 'Failed to connect to the host via ssh: ssh: connect to host 198.18.233.30 port 22: No route to host'}
FAILED = {'failed': True, 'msg': '/usr/bin/python3: not found'}


def message(text, vm_name=None, vcore=None, uptime=1.5):
    return {'pcore': 0, 'vm': vm_name, 'vcore': vcore, 'location': None, 'message': text, 'uptime': uptime,
            'time': None, 'host': None}


def model(results, **kwargs):
    kwargs.setdefault('generated_at', '2026-11-30T03:00:00+00:00')
    kwargs.setdefault('version', '9.9.9')
    return sp.fleet_model(results, list(results), **kwargs)


class Tags(HTMLParser):
    def __init__(self):
        HTMLParser.__init__(self)
        self.tags, self.text = [], []
        self.styles, self.scripts, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ('style', 'script') else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == 'style':
            self.styles.append(data)
        elif self._in == 'script':
            self.scripts.append(data)
        else:
            self.text.append(data)


def parse(page):
    parser = Tags()
    parser.feed(page)
    return parser


def test_hosts_up_unloaded_unreachable_and_failed_are_told_apart():
    m = model({'a': up_result([]), 'b': unloaded_result(), 'c': UNREACHABLE, 'd': FAILED, 'e': None})
    assert [h['status'] for h in m['hosts']] == ['up', 'not_loaded', 'unreachable', 'failed', 'failed']
    assert m['summary']['hosts'] == {'total': 5, 'up': 1, 'not_loaded': 1, 'unreachable': 1, 'failed': 2}
    assert 'No route to host' in m['hosts'][2]['problems'][0]
    assert m['hosts'][3]['problems'] == ['/usr/bin/python3: not found']
    # an unloaded host still shows what its inventory records
    assert [v['name'] for v in m['hosts'][1]['vms']] == ['spare']
    assert 'not loaded (no v3-info in /proc/v3vee)' in m['hosts'][1]['reason']


def test_a_host_without_palacios_at_all_says_so():
    result = unloaded_result()
    result['ansible_facts']['v3vee']['tools'] = {'found': {}, 'missing': ['v3_create']}
    m = model({'a': result})
    assert m['hosts'][0]['status'] == 'not_loaded' and 'Palacios is not installed here' in m['hosts'][0]['reason']
    assert 'Palacios is not installed here' in sp.render_html(m)


def test_fleet_summary_adds_up_vms_memory_drift_and_fits():
    a = up_result([vm('web1', 'running', slot=0), vm('web2', 'paused', slot=1, drift=['state_changed']),
                   vm('cli', 'stopped', 'not_in_inventory', slot=2)])
    b = up_result([vm('db', 'ERROR', slot=0, drift=['state_changed', 'not_desired_state'])],
                  fits=[{'mem_mb': 128, 'vms': 5}])
    m = model({'a': a, 'b': b, 'c': unloaded_result()})
    s = m['summary']
    assert s['vms'] == {'total': 5, 'by_state': {'running': 1, 'paused': 1, 'stopped': 1, 'ERROR': 1, 'inactive': 1},
                        'by_category': {'active_inventory': 3, 'inactive_inventory': 1, 'not_in_inventory': 1}}
    assert s['drifted'] == 2
    assert s['memory'] == {'pool_bytes': 2 * 516 * MiB, 'reserved_bytes': 2 * 512 * MiB,
                           'used_bytes': 2 * 256 * MiB, 'free_bytes': 2 * 260 * MiB}
    assert s['fits'] == [{'mem_mb': 128, 'vms': 7}]


def test_sizes_not_gathered_show_as_unknown_not_zero():
    m = model({'a': up_result([])}, vm_mem_mb=[128, 512])
    assert m['hosts'][0]['memory']['fits'] == [{'mem_mb': 128, 'vms': 2}, {'mem_mb': 512, 'vms': None}]
    assert u'? \u00d7 512 MiB' in sp.render_html(m)


def test_memory_is_shown_per_numa_node():
    nodes = [node(0, 260 * MiB, 4 * MiB, 0, []), node(1, 132 * MiB, 132 * MiB, 1, [])]
    m = model({'a': up_result([], nodes=nodes)})
    mem = m['hosts'][0]['memory']
    assert [(n['node'], n['used_bytes'], n['free_bytes']) for n in mem['nodes']] == [
        (0, 256 * MiB, 4 * MiB), (1, 0, 132 * MiB)]
    page = sp.render_html(m)
    assert page.count('<div class="node">') == 2 and 'NUMA node 1' in page


def test_slots_show_used_free_and_broken_error_and_ghost_slots():
    vms = [vm('ok', 'running', slot=0), vm('bad', 'ERROR', slot=2), vm('ghost', 'UNAVAILABLE', slot=5),
           vm('off', 'inactive', 'inactive_inventory')]
    slots = model({'a': up_result(vms)})['hosts'][0]['slots']
    assert len(slots) == 32
    assert [s['state'] for s in slots[:6]] == ['used', 'free', 'broken', 'free', 'free', 'broken']
    assert slots[5]['vms'] == ['ghost'] and slots[5]['vm_state'] == 'UNAVAILABLE'
    page = sp.render_html(model({'a': up_result(vms)}))
    assert 'slot 5: ghost (ghost (no data))' in page and '2 broken' in page


def test_every_state_and_drift_is_written_in_words_and_symbols_not_colour_alone():
    states = ['running', 'paused', 'stopped', 'ERROR', 'UNKNOWN', 'UNAVAILABLE']
    vms = [vm('vm%d' % i, state, slot=i) for i, state in enumerate(states)]
    vms.append(vm('rec', 'inactive', 'inactive_inventory', drift=['slot_gone']))
    text = re.sub(r'\s+', ' ', ''.join(parse(sp.render_html(model({'a': up_result(vms)}))).text))
    for state in states + ['inactive']:
        symbol = sp.STATES[state][0]
        assert '%s %s' % (symbol, sp.STATE_LABELS.get(state, state)) in text
    assert u'\u26a0 slot_gone' in text and u'\u2714 in sync' in text


def test_hostile_names_paths_and_kernel_messages_stay_text():
    hostile_vm = vm(HOSTILE, 'running', 'not_in_inventory', slot=0, config='/srv/"><img src=x>.xml',
                    config_options={'mem': '<marquee>'})
    msgs = [message('boot <iframe src=//evil>', vm_name=HOSTILE, vcore=0), message('nul\x00 esc\x1b[31m end')]
    page = sp.render_html(model({'<h>"\'': up_result([hostile_vm], messages=msgs)}, title='<title>x'))
    parsed = parse(page)
    tags = [tag for tag, _attrs in parsed.tags]
    assert 'img' not in tags and 'iframe' not in tags and 'marquee' not in tags
    assert tags.count('script') == 1 and tags.count('title') == 1
    text = ''.join(parsed.text)
    assert HOSTILE in text and 'boot <iframe src=//evil>' in text and '<title>x' in text
    assert '\x00' not in page and '\x1b' not in page and 'nul\\x00 esc\\x1b[31m end' in text
    assert any(attrs.get('data-host') == '<h>"\'' for _tag, attrs in parsed.tags)


def test_undecodable_name_bytes_are_shown_not_crashing():
    page = sp.render_html(model({'a': up_result([vm(u'caf\udce9', 'stopped', slot=0)])}))
    assert 'caf\\udce9' in page
    page.encode('utf-8')


def test_kernel_messages_keep_their_order_and_vm_scoped_ones_are_marked():
    msgs = [message('first', uptime=1.0), message('Starting VM', vm_name='web1', uptime=2.0),
            message('vcore up', vm_name='web1', vcore=1, uptime=3.0)]
    page = sp.render_html(model({'a': up_result([], messages=msgs)}))
    kmsg = page[page.index('<ol class="kmsg"'):page.index('</ol>', page.index('<ol class="kmsg"'))]
    assert kmsg.index('first') < kmsg.index('Starting VM') < kmsg.index('vcore up')
    assert kmsg.count('<li class="vm-msg">') == 2 and kmsg.count('<li class="host-msg">') == 1
    assert 'VM <bdi>web1</bdi> vcore 1' in kmsg


def test_page_is_self_contained_and_its_csp_pins_the_inline_style_and_script():
    page = sp.render_html(model({'a': up_result([vm('web1', 'running', slot=0)])}))
    parsed = parse(page)
    assert not [attrs for _tag, attrs in parsed.tags if 'src' in attrs or attrs.get('rel') == 'stylesheet']
    csp = next(attrs['content'] for tag, attrs in parsed.tags if attrs.get('http-equiv') == 'Content-Security-Policy')
    assert "default-src 'none'" in csp

    def digest(text):
        return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode()
    assert re.search(r"style-src %s;" % re.escape(digest(parsed.styles[0])), csp)
    assert re.search(r"script-src %s;" % re.escape(digest(parsed.scripts[0])), csp)


def test_reload_and_stale_warning_only_when_asked():
    assert 'http-equiv="refresh"' not in sp.render_html(model({'a': up_result([])}))
    page = sp.render_html(model({'a': up_result([])}, refresh_seconds=60, stale_after_seconds=180))
    assert '<meta http-equiv="refresh" content="60">' in page and 'data-stale-after="180"' in page


def test_model_is_json_and_carries_when_and_which_version():
    m = model({'a': up_result([vm('web1', 'running', slot=0)]), 'b': UNREACHABLE})
    assert json.loads(json.dumps(m)) == m
    assert m['generated_at'] == '2026-11-30T03:00:00+00:00' and m['collection_version'] == '9.9.9'
    page = sp.render_html(m)
    assert 'datetime="2026-11-30T03:00:00+00:00"' in page and 'v3vee.palacios 9.9.9' in page


def test_collection_version_is_this_checkouts():
    with open(os.path.join(ROOT, 'galaxy.yml')) as handle:
        assert sp.collection_version() == yaml.safe_load(handle)['version']


def test_filter_reads_each_hosts_registered_result_in_play_order():
    hostvars = {'b': {'facts_reg': UNREACHABLE}, 'a': {'facts_reg': up_result([])}, 'c': {}}
    model_filter = FilterModule().filters()['status_page_model']
    m = model_filter(hostvars, ['a', 'b', 'c'], 'facts_reg', generated_at='t', version='1')
    assert [(h['name'], h['status']) for h in m['hosts']] == [('a', 'up'), ('b', 'unreachable'), ('c', 'failed')]
    assert FilterModule().filters()['status_page_html'](m).startswith('<!DOCTYPE html>')
