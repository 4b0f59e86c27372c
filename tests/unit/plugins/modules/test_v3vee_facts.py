import ast
import json
import os

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.v3vee.palacios.plugins.modules import v3vee_facts

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGINS = os.path.join(HERE, '..', '..', '..', '..', 'plugins')
INFO = ('kernel MAX_ORDER:\t11\nnumber of nodes:\t1\nnumber of cpus: \t2\n\n'
        'palacios compiled mem_block_size:\t134217728\npalacios run-time mem_block_size:\t134217728\n\n'
        'CPU to node mappings\ncpu 0 -> node 0\ncpu 1 -> node 0\n')


def _literal(path, name):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == name:
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError('%s has no %s' % (path, name))


def test_documented_options_are_the_argument_spec():
    doc = _literal(os.path.join(PLUGINS, 'modules', 'v3vee_facts.py'), 'DOCUMENTATION')
    fragment = _literal(os.path.join(PLUGINS, 'doc_fragments', 'common.py'), 'DOCUMENTATION')
    documented = dict(fragment['options'], **doc['options'])
    spec = v3vee_facts.facts_argument_spec()
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        assert documented[name]['type'] == option['type'], name
        assert documented[name].get('default') == option.get('default'), name
        assert documented[name].get('choices') == option.get('choices'), name


def run(monkeypatch, capsys, tmp_path, **args):
    conf = tmp_path / 'host.conf'
    conf.write_text('V3VEE_PROC_DIR=%s\nV3VEE_DEV_DIR=%s\nV3VEE_INVENTORY_PATH=%s\nV3VEE_KERNEL_LOG=%s\n'
                    'V3VEE_TOOLS_DIR=%s\n' % (tmp_path / 'proc', tmp_path / 'dev', tmp_path / 'inv.db',
                                              tmp_path / 'kmsg.log', tmp_path / 'bin'))
    monkeypatch.setenv('V3VEE_HOST_CONF', str(conf))
    for name in ('V3VEE_PROC_DIR', 'V3VEE_DEV_DIR', 'V3VEE_INVENTORY_PATH', 'V3VEE_KERNEL_LOG', 'V3VEE_TOOLS_DIR'):
        monkeypatch.delenv(name, raising=False)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            v3vee_facts.main()
    return json.loads(capsys.readouterr().out)


def test_sets_facts_once_and_unchanged_on_a_host_without_palacios(monkeypatch, capsys, tmp_path):
    out = run(monkeypatch, capsys, tmp_path)
    assert out['changed'] is False and 'failed' not in out
    facts = out['ansible_facts']['v3vee']
    assert 'v3vee' not in out  # the payload is returned once, as facts
    assert facts['module_loaded'] is False and facts['host'] is None and facts['vms'] == []
    assert facts['paths']['proc_dir'] == str(tmp_path / 'proc')
    assert facts['telemetry']['source'] == 'file' and facts['telemetry']['path'] == str(tmp_path / 'kmsg.log')


def test_reads_a_loaded_host_in_check_mode(monkeypatch, capsys, tmp_path):
    (tmp_path / 'proc').mkdir()
    (tmp_path / 'proc' / 'v3-info').write_text(INFO)
    (tmp_path / 'proc' / 'v3-guests').write_text('vm1\t/dev/v3-vm0\tstopped\t1 vcores\t1 regions\t134217728 mem\tgeneral\n')
    out = run(monkeypatch, capsys, tmp_path, _ansible_check_mode=True, gather_subset=['!all', 'host', 'vms'])
    facts = out['ansible_facts']['v3vee']
    assert facts['gather_subset'] == ['host', 'vms'] and facts['host']['cpus'] == 2
    assert facts['vms_by_name']['vm1']['category'] == 'not_in_inventory'
    assert not os.path.exists(str(tmp_path / 'inv.db'))


@pytest.mark.parametrize('args, message', [
    ({'gather_subset': ['hardware']}, 'Unknown gather_subset'),
    ({'telemetry_lines': 0}, 'telemetry_lines must be between 1'),
    ({'vm_mem_mb': [128, 0]}, 'at least 1 MB'),
    ({'telemetry_exclude': ['(']}, 'not a regular expression'),
])
def test_bad_options_fail(monkeypatch, capsys, tmp_path, args, message):
    out = run(monkeypatch, capsys, tmp_path, **args)
    assert out['failed'] is True and message in out['msg']


def test_problems_become_warnings(monkeypatch, capsys, tmp_path):
    (tmp_path / 'inv.db').write_bytes(b'not a database' * 100)
    out = run(monkeypatch, capsys, tmp_path, gather_subset=['vms'])
    assert out['ansible_facts']['v3vee']['inventory']['error']
    # ansible-core 2.19 returns structured warnings; older versions plain strings.
    assert 'is not a usable SQLite database' in json.dumps(out['warnings'])
