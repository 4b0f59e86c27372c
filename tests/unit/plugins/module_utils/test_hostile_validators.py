"""Hostile input for every validator of what users give (VM names, guest XML, config_options,
memory targets, v3vee_facts options) and for the parse of v3_create's output: a validator accepts
only what Palacios carries faithfully, and refuses everything else with V3veeError and a
message, within bounded time and memory."""
import io
import json
import os
import socket
import struct
import tempfile
import time
import tracemalloc
from contextlib import redirect_stdout
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args
from hypothesis import example, given, settings, strategies as st
from simhost import ROOT, install_template, loaded_sim

from ansible_collections.v3vee.palacios.plugins.module_utils import memory, module as module_glue, validate
from ansible_collections.v3vee.palacios.plugins.module_utils.common import SETTINGS, V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import prepare
from ansible_collections.v3vee.palacios.plugins.module_utils.guifile import FILE_NAME as guifile_name
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import NAME_MAX_BYTES, Pool
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import CREATED_RE
from ansible_collections.v3vee.palacios.plugins.modules import v3vee_inventory, v3vee_memory, v3vee_vm, v3vee_vms
from ansible_collections.v3vee.palacios.plugins.modules.v3vee_facts import check_params

ANY_CHAR = st.characters(codec=None, exclude_categories=())
CONTROL = [chr(c) for c in list(range(0x20)) + list(range(0x7f, 0xa0))]
# One character of each UTF-8 length, and surrogateescaped bytes (invalid UTF-8 as Ansible passes it).
WIDE = ['a', '\xe9', '\u20ac', '\U0001f600', '\udcff', '\udc80', '\ud800']
GOOD_XML = '<vm class="PC"><memory opt_tag="mem">256</memory><cores count="2"><core/><core/></cores></vm>'


def refused_or(call, *args):
    try:
        return call(*args)
    except V3veeError as err:
        assert str(err), 'a V3veeError without a message'
        return None


def palacios_carries(name):
    """What Palacios keeps faithfully (gotcha 9, spec 1.1), said independently of validate_name."""
    try:
        raw = name.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return (0 < len(raw) <= NAME_MAX_BYTES and ',' not in name and not name.startswith('-')
            and not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in name))


names = st.one_of(
    st.text(ANY_CHAR, max_size=140),
    st.lists(st.sampled_from(WIDE + CONTROL + [',', '-', ' ']), max_size=8).map(''.join),
    # Byte lengths around Palacios' 127-byte cut, ending in a character of any width.
    st.tuples(st.integers(120, 127), st.sampled_from(WIDE)).map(lambda t: 'x' * t[0] + t[1]),
)


@given(names)
@example('x' * 126 + '\xe9')        # 128 bytes: the kernel would keep 127, half a character
@example('x' * 125 + '\xe9')        # 127 bytes: kept whole
@example('x' * 124 + '\u20ac')      # 127 bytes
@example('x' * 124 + '\U0001f600')  # 128 bytes
@example('\ud800')                  # a lone surrogate: once a UnicodeEncodeError traceback
@example('-b')                      # v3_create's getopt would take it for its -b option
def test_vm_name_accepted_only_if_palacios_carries_it(name):
    accepted = refused_or(validate.validate_name, name) is not None
    assert accepted == palacios_carries(name), name


@pytest.mark.parametrize('name', ['\ud800', '\udcff' + 'x', 'a\udc80'])
def test_vm_name_with_bytes_that_are_not_utf8_is_refused_clearly(name):
    with pytest.raises(V3veeError, match='not valid UTF-8'):
        validate.validate_name(name)


def test_vm_name_starting_with_a_dash_is_refused():
    with pytest.raises(V3veeError, match='options'):
        validate.validate_name('-web')


# v3_create's success line (spec 1.1): the slot is learnt from it (gotcha 4).

@given(st.text(st.characters(codec='utf-8', exclude_categories=('Cc', 'Cs')), min_size=1, max_size=60)
       .filter(palacios_carries), st.integers(0, 31),
       st.lists(st.tuples(st.text(min_size=1, max_size=5), st.text(max_size=5)), max_size=3))
@example('a created at /dev/v3-vm9', 0, [])
@example('x) created at /dev/v3-vm7', 3, [('mem', 'created at /dev/v3-vm5')])
def test_created_slot_is_read_from_the_success_line_whatever_the_name(name, slot, options):
    stdout = 'Building VM Image (cfg=/v3/a.xml) (name=%s) (%d config options)\n' % (name, len(options))
    stdout += ''.join('Config option: %s: %s\n' % pair for pair in options)
    stdout += 'Guest Image Created (size=1015)\nVM (%s) created at /dev/v3-vm%d\n' % (name, slot)
    assert int(CREATED_RE.findall(stdout)[-1][2]) == slot


# Guest XML (spec 5): what v3_create -b and the kernel parse.

def xml_source(data, tmpdir):
    path = os.path.join(tmpdir, 'vm.xml')
    with open(path, 'wb') as handle:
        handle.write(data)
    return path


def bounded_check(data, options=None, peak_limit=32 << 20, seconds=5):
    """check_xml of `data`: its result (None when refused), checked to stay within bounds."""
    tracemalloc.start()
    started = time.time()
    try:
        shape = refused_or(validate.check_xml, data, 'vm.xml', None, options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < peak_limit, 'check_xml took %d bytes for %d bytes of XML' % (peak, len(data))
    assert time.time() - started < seconds
    return shape


XML_PIECES = ['<vm class="PC">', '</vm>', '<memory>', '</memory>', '<memory opt_tag="mem">', '256', '0', '-1',
              '<cores count="2">', '<cores count="x">', '</cores>', '<core/>', '<files>', '</files>',
              '<file filename="/etc/hostname"/>', '<file filename="rel.img"/>', '<?xml version="1.0"?>',
              '<?xml version="1.0" encoding="ISO-8859-1"?>', '<!DOCTYPE vm [<!ENTITY a "aaaa">]>', '&a;', '&amp;',
              '&#0;', '&#x10FFFF;', '<![CDATA[x]]>', '<!-- c -->', '<x y="', '"', "'", '>', '<', '\x00', '\ufeff',
              '\ud800', '\xe9', ' memory="1"', '\xb2', '\u0663', '9' * 4400, '2147483648', '2147483647']


@settings(deadline=5000)
@given(st.lists(st.one_of(st.sampled_from(XML_PIECES), st.text(ANY_CHAR, max_size=5)), max_size=40).map(''.join),
       st.sampled_from(['utf-8', 'utf-16', 'latin-1']))
@example('<vm class="PC"><memory>\xb2</memory><cores count="1"/></vm>', 'utf-8')  # once int('\xb2'): ValueError
@example('<vm class="PC"><memory>%s</memory><cores count="1"/></vm>' % ('9' * 4400), 'utf-8')  # once past int()'s limit
def test_guest_xml_of_any_pieces_validates_or_says_why(text, encoding):
    data = text.encode(encoding, 'surrogatepass') if encoding == 'utf-8' else text.encode(encoding, 'replace')
    shape = bounded_check(data)
    if shape is not None:
        assert 0 < shape.mem_mb <= validate.INT_MAX and 0 < shape.vcores <= validate.INT_MAX
        assert b'<!DOCTYPE' not in data
        data.decode('utf-8')  # only UTF-8 passes: ezxml ignores the declared encoding


printable = st.text(st.characters(codec='utf-8', exclude_categories=('Cs',)), max_size=20)


@settings(deadline=5000)
@given(st.integers(1, validate.INT_MAX), st.integers(1, 64), st.lists(st.tuples(
    st.sampled_from(['device', 'extension', 'x']), printable, printable), max_size=5), st.integers(0, 60))
def test_guest_xml_well_formed_with_any_text_gives_its_shape(mem, cores, extras, depth):
    from xml.sax.saxutils import escape, quoteattr
    body = ''.join('<%s id=%s>%s</%s>' % (tag, quoteattr(attr), escape(text), tag) for tag, attr, text in extras)
    nested = '<n>' * depth + '</n>' * depth  # with the root and <x>: at most 62 levels, under the bound
    xml = '<vm class="PC"><memory>%d</memory><cores count="%d"/>%s%s</vm>' % (mem, cores, body, nested)
    data = xml.encode('utf-8')
    valid_xml_chars = not any(ord(c) < 0x20 and c not in '\t\n\r' or c in '\ufffe\uffff' for c in xml)
    shape = bounded_check(data)
    if valid_xml_chars:
        assert (shape.mem_mb, shape.vcores) == (mem, cores)
    else:
        assert shape is None  # XML 1.0 has no such characters; expat says where


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE vm [<!ENTITY l0 "ha">'
                  + ''.join('<!ENTITY l%d "%s">' % (i, ('&l%d;' % (i - 1)) * 10) for i in range(1, 10))
                  + ']><vm class="PC"><memory>&l9;</memory><cores count="1"/></vm>')
QUADRATIC = ('<!DOCTYPE vm [<!ENTITY b "%s">]><vm class="PC"><memory>1</memory><cores count="1"/><x>%s</x></vm>'
             % ('b' * 50000, '&b;' * 50000))
DEEP = '<vm class="PC"><memory>1</memory><cores count="1"/>' + '<a>' * 100000 + '</a>' * 100000 + '</vm>'
HUGE_ATTRIBUTE = '<vm class="PC" x="%s"><memory>1</memory><cores count="1"/></vm>' % ('y' * (8 << 20))


@pytest.mark.parametrize('text,reason', [
    (BILLION_LAUGHS, 'DOCTYPE'),
    (QUADRATIC, 'DOCTYPE'),
    (DEEP, 'deeper than 64'),
    (HUGE_ATTRIBUTE, 'at most 1048576 bytes'),
    ('<!DOCTYPE vm SYSTEM "http://127.0.0.1/vm.dtd"><vm class="PC"><memory>1</memory><cores count="1"/></vm>',
     'DOCTYPE'),
    ('<?xml version="1.0" encoding="ISO-8859-1"?><vm class="PC"><memory>1</memory><cores count="1"/></vm>',
     'ISO-8859-1'),
    ('<vm class="PC"><memory>&undefined;</memory><cores count="1"/></vm>', 'undefined entity'),
], ids=['billion-laughs', 'quadratic-blowup', 'nesting-100k', 'attribute-8MB', 'external-dtd', 'latin-1', 'entity'])
def test_guest_xml_attacks_are_refused_within_bounds(text, reason):
    with pytest.raises(V3veeError, match=reason):
        validate.check_xml(text.encode('utf-8'), 'vm.xml')
    assert bounded_check(text.encode('utf-8')) is None


@pytest.mark.parametrize('data', [GOOD_XML.encode('utf-16'), GOOD_XML.encode('utf-8')[:10] + b'\xff' + GOOD_XML.encode()[10:]],
                         ids=['utf-16', 'invalid-utf-8'])
def test_guest_xml_that_is_not_utf8_is_refused(data):
    with pytest.raises(V3veeError, match='not UTF-8'):
        validate.check_xml(data, 'vm.xml')


def test_external_entities_are_neither_read_nor_fetched():
    """SYSTEM file:// and http:// entities: refused before anything is opened or connected."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmpdir:
        secret = os.path.join(tmpdir, 'secret')
        with open(secret, 'w') as handle:
            handle.write('42')
        os.utime(secret, ns=(0, 0))
        for system in ('file://' + secret, 'http://127.0.0.1:%d/x' % port, secret):
            text = ('<!DOCTYPE vm [<!ENTITY x SYSTEM "%s">]><vm class="PC"><memory>&x;</memory>'
                    '<cores count="1"/></vm>' % system)
            with pytest.raises(V3veeError, match='DOCTYPE') as err:
                validate.check_xml(text.encode(), 'vm.xml')
            assert '42' not in str(err.value)
        assert os.stat(secret).st_atime_ns == 0, 'the file an entity named was read'
    with pytest.raises(BlockingIOError):
        server.accept()  # nobody connected
    server.close()


def test_image_announcing_4gb_of_xml_is_read_only_up_to_the_bound(tmp_path):
    path = tmp_path / 'huge.img'
    path.write_bytes(b'v3vee\x00\x00\x01' + struct.pack('<I', 0xFFFFFFFF) + b'<' * (validate.MAX_XML_BYTES + 100))
    with pytest.raises(V3veeError, match='at most'):
        validate.check_image(str(path))


def test_config_file_larger_than_the_bound_is_refused(tmp_path):
    path = tmp_path / 'big.xml'
    path.write_bytes(GOOD_XML.encode().replace(b'<core/>', b'<core/>' + b' ' * validate.MAX_XML_BYTES, 1))
    with pytest.raises(V3veeError, match='at most'):
        validate.check_config(str(path))


# config_options: tag=value arguments of v3_create -b.

option_text = st.one_of(st.text(ANY_CHAR, max_size=12), st.sampled_from(CONTROL + WIDE + ['mem', 'MEM', '\u212aey',
                                                                                          'x' * 70000]))


@given(st.dictionaries(option_text, option_text, max_size=3))
@example({'mem': '12\x008'})        # NUL: once a ValueError from subprocess, past validation
@example({'mem': '\udcff'})         # a byte that is not UTF-8: once a UnicodeEncodeError at exec
@example({'\u212aey': '1'})         # KELVIN SIGN lower()s to 'k'; v3_create's strcasecmp does not fold it
def test_config_options_accepted_only_if_v3_create_takes_them(options):
    xml = GOOD_XML.replace('<core/><core/>', '<core/><core/><x opt_tag="key">1</x>')
    shape = refused_or(validate.check_xml, xml.encode(), 'vm.xml', None, options)
    if shape is not None:
        for key, value in options.items():
            assert key.lower() in ('mem', 'key') and key.isascii()
            arg = ('%s=%s' % (key, value)).encode('utf-8')  # what reaches argv; encodable, no NUL
            assert b'\x00' not in arg and len(arg) <= validate.MAX_OPTION_BYTES
            assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in value)


@given(st.text(ANY_CHAR, max_size=60))
@example('<vm class="PC"><memory>1</memory><cores count="1"/></vm>\udcff')
def test_inline_config_xml_of_any_text_validates_or_says_why(text):
    refused_or(prepare, '/nonexistent/inventory.db', 'vm1', text, None)


# v3vee_memory targets (node_mb values come from YAML or templating: numbers, strings, anything).

mb_values = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True, allow_infinity=True), st.none(),
                      st.booleans(), st.text(max_size=6), st.sampled_from(['128', ' 64 ', '1e3', 'nan', '\u0663']),
                      st.lists(st.integers(), max_size=2))
node_keys = st.one_of(st.integers(-2, 3).map(str), st.sampled_from(['0', '1_0', '\u0661', ' 1', '+1', 'x', '']),
                      st.text(max_size=3))
INFO = {'nodes': 2, 'runtime_block_size': 4 << 20, 'compiled_block_size': 128 << 20, 'max_order': 11}
ZONES = {0: {'pools': [Pool(0x7f400000, 22, 4 << 20, 4 << 20)]}, 1: {'pools': [Pool(0x9f400000, 22, 4 << 20, 0)]}}


@settings(deadline=2000)
@given(st.one_of(st.builds(lambda v: {'total': v}, mb_values.filter(lambda v: v is not None)),  # the module's shape
                 st.builds(lambda d: {'per_node': d}, st.dictionaries(node_keys, mb_values, max_size=3))),
       st.sampled_from(memory.METHODS))
@example({'total': 2 ** 60}, 'kernel')        # once: a plan of 2**40 steps, built in memory
@example({'per_node': {'0': '64'}}, 'kernel')  # once: TypeError comparing '64' < 0
@example({'total': float('nan')}, 'kernel')    # once: ValueError from int(nan)
def test_memory_target_plans_within_bounds_or_says_why(target, method):
    plan = refused_or(memory.plan_memory, ZONES, INFO, target, None, method)
    if plan is not None:
        assert len(plan['steps']) <= memory.MAX_PLAN_STEPS
        assert all(isinstance(node, int) and 0 <= node < INFO['nodes'] for node in plan['reserved_after'])


def test_memory_node_given_as_a_numeric_string_is_planned():
    plan = memory.plan_memory(ZONES, INFO, {'per_node': {'1': '8'}}, None, 'kernel')
    assert [step['node'] for step in plan['steps']] == [1, 1]


# v3vee_facts options: the exclude patterns are compiled by the module.

@given(st.lists(st.one_of(st.text(ANY_CHAR, max_size=10),
                          st.sampled_from(['(' * 1000 + ')' * 1000, 'a{99999999999}', '[', '(?P<x>', '\\'])),
                max_size=3))
@example(['(' * 1000 + ')' * 1000])   # once a RecursionError
@example(['a{99999999999}'])          # once an OverflowError
def test_facts_exclude_patterns_compile_or_say_why(patterns):
    params = {'gather_subset': ['all'], 'telemetry_lines': 50, 'vm_mem_mb': [128], 'telemetry_exclude': patterns}
    refused_or(check_params, params)


# The module boundary: the real modules (AnsibleModule, their validation, the engine) on a
# simulated host, with a tool runner that lets no tool run and fails the test if what reaches it
# is not something Palacios carries faithfully.

BIOS_XML = os.path.join(ROOT, 'roles', 'simulator', 'files', 'guests', 'bios-only.xml')


def argv_problem(argv):
    """What is wrong with an argv a module handed to a v3 tool, or None."""
    for arg in argv:
        try:
            arg.encode('utf-8')
        except UnicodeEncodeError:
            return 'argument %r is not UTF-8 text' % arg
        if '\x00' in arg:
            return 'argument %r holds a NUL' % arg
    if os.path.basename(argv[0]) == 'v3_create':
        positional = [a for a in argv[1:] if a != '-b']
        if not palacios_carries(positional[1]):
            return 'VM name %r reached v3_create' % positional[1]
        if any(not palacios_carries(option) for option in positional[2:]):
            return 'config option %r reached v3_create' % positional[2:]
    return None


class ToolBoundary(object):
    """A runner that runs nothing: it checks the argv, then fails the run as a refusing tool would."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv, cwd=None, env_update=None, timeout=None):
        self.calls.append(list(argv))
        problem = argv_problem(argv)
        assert problem is None, problem
        raise V3veeError('%s was not run (the test lets no tool run).' % os.path.basename(argv[0]))


@pytest.fixture(scope='module')
def sim_env(tmp_path_factory):
    """The environment that points the modules at one loaded simulated host (module-wide: tools never run)."""
    sim = loaded_sim(install_template(tmp_path_factory), tmp_path_factory.mktemp('hostile') / 'host')
    conf = os.path.join(sim.root, 'host.conf')
    open(conf, 'w').close()
    env = dict((variable, getattr(sim.settings, name)) for name, (variable, _key, _default) in SETTINGS.items()
               if getattr(sim.settings, name))
    env['V3VEE_HOST_CONF'] = conf
    return env


def utf8(text):
    try:
        text.encode('utf-8')
        return True
    except UnicodeEncodeError:
        return False


# AnsibleModule itself cannot take lone surrogates (its invocation log encodes every parameter as
# UTF-8 and raises): module parameters are UTF-8 text; the validators above take the rest.
module_names = names.filter(utf8)
module_option_text = option_text.filter(utf8)


def run_module(env, module, args):
    """(the module's JSON result, the argv lists that reached the runner)."""
    boundary, out = ToolBoundary(), io.StringIO()
    with mock.patch.dict(os.environ, env), patch_module_args(args), redirect_stdout(out), \
            mock.patch.object(module_glue, 'subprocess_runner', boundary):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(out.getvalue()), boundary.calls


@settings(deadline=5000)
@given(module_names, st.one_of(st.none(), st.dictionaries(st.sampled_from(['mem', 'MEM', '\u212aey']), module_option_text,
                                                          max_size=2)))
@example('vm ok', {'mem': '64'})
@example('-b', None)
@example('x' * 126 + '\xe9', None)
@example('ok', {'mem': '6\x004'})
def test_v3vee_vm_lets_only_what_palacios_carries_reach_v3_create(sim_env, name, options):
    result, calls = run_module(sim_env, v3vee_vm, {'name': name, 'config': BIOS_XML, 'config_options': options,
                                                   'state': 'stopped'})
    assert result.get('failed') and result['msg'], 'every run fails: bad input, or the test\'s runner'
    if not palacios_carries(name) or any(not palacios_carries(v) for v in (options or {}).values()):
        assert calls == [], 'invalid input reached a v3 tool'
        assert 'was not run' not in result['msg']
    else:
        # A good name with the good config gets as far as v3_create (so the runner is really reached);
        # an option value may still be refused for what it means (mem=0).
        tools = [os.path.basename(argv[0]) for argv in calls]
        assert tools == ['v3_create'] if options is None else tools in ([], ['v3_create']), result['msg']


@settings(deadline=5000)
@given(st.lists(module_names, min_size=1, max_size=3))
@example(['good', 'bad\tname'])
def test_v3vee_vms_refuses_the_whole_batch_before_any_tool_if_one_name_is_bad(sim_env, batch):
    vms = [{'name': name, 'config': BIOS_XML, 'state': 'stopped'} for name in batch]
    result, calls = run_module(sim_env, v3vee_vms, {'vms': vms})
    assert result.get('failed') and result['msg']
    if not all(palacios_carries(name) for name in batch):
        assert calls == [], 'invalid input reached a v3 tool'


@settings(deadline=5000)
@given(st.dictionaries(node_keys, mb_values, min_size=1, max_size=2), st.sampled_from(memory.METHODS))
@example({'0': '1e3'}, 'kernel')
@example({'1_0': 64}, 'kernel')
def test_v3vee_memory_runs_v3_mem_only_for_a_valid_target(sim_env, node_mb, method):
    result, calls = run_module(sim_env, v3vee_memory, {'node_mb': node_mb, 'method': method})
    assert result.get('failed') or calls == [], result
    valid = all(memory._NODE_RE.match('%s' % key) and memory._mb(value) is not None for key, value in node_mb.items())
    if calls:
        assert valid, 'an invalid target reached v3_mem: %r' % calls
        assert all(os.path.basename(argv[0]) == 'v3_mem' for argv in calls)


gui_lines = st.tuples(module_names, st.sampled_from([BIOS_XML, '', 'vm.xml', BIOS_XML + '\t']),
                      st.sampled_from(['', '/dev/v3-vm0', '/dev/v3-vm99', 'x']), st.sampled_from(['0', '1', '2', '3', '']),
                      st.sampled_from(['', '/x.img'])).map(lambda f: ','.join(f).encode('utf-8'))


@settings(deadline=5000)
@given(st.lists(st.one_of(gui_lines, st.binary(max_size=12)), max_size=6).map(b'\n'.join))
@example(b'-b,' + BIOS_XML.encode() + b',,2,\ngood,' + BIOS_XML.encode() + b',,2,')
def test_v3vee_inventory_recovers_only_gui_lines_palacios_carries(sim_env, data):
    result, calls = import_and_recover(sim_env, data)
    assert 'msg' in result or 'failed' not in result, result
    assert all(os.path.basename(argv[0]) == 'v3_create' for argv in calls)  # checked by the runner


def import_and_recover(env, data):
    with tempfile.TemporaryDirectory() as tmpdir:
        path = os.path.join(tmpdir, guifile_name)
        with open(path, 'wb') as handle:
            handle.write(data)
        return run_module(env, v3vee_inventory, {'gui_import': path, 'recover': True,
                                                 'inventory_path': os.path.join(tmpdir, 'inv.db')})


def test_v3vee_inventory_recover_reaches_v3_create_for_a_good_gui_line_only(sim_env):
    _result, calls = import_and_recover(sim_env, b'-b,%s,,2,\ngood,%s,,2,\n' % (BIOS_XML.encode(), BIOS_XML.encode()))
    assert [argv[-1] for argv in calls] == ['good']


def test_v3vee_memory_target_given_as_a_string_reaches_v3_mem(sim_env):
    result, calls = run_module(sim_env, v3vee_memory, {'node_mb': {'0': '512'}, 'method': 'hotremove'})
    assert [os.path.basename(argv[0]) for argv in calls] == ['v3_mem'], result['msg']
