"""What every module's documentation must say, checked for all of them (new modules included)."""
import os

import pytest
import yaml
from moddocs import ROOT, literal, module_doc

from ansible_collections.v3vee.palacios.plugins.modules import v3vee_vm, v3vee_vm_info

MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, 'plugins', 'modules'))
                 if name.endswith('.py') and not name.startswith('_'))


doc = module_doc


@pytest.mark.parametrize('module', MODULES)
def test_every_module_documents_its_requirements(module):
    requirements = doc(module).get('requirements')
    assert requirements and all(isinstance(item, str) and item for item in requirements)


def test_every_module_is_in_the_action_group():
    runtime = yaml.safe_load(open(os.path.join(ROOT, 'meta', 'runtime.yml')))
    assert sorted(runtime['action_groups']['v3vee']) == MODULES


@pytest.mark.parametrize('module, spec', [
    ('v3vee_vm', v3vee_vm.vm_argument_spec()),
    ('v3vee_vm_info', v3vee_vm_info.info_argument_spec()),
])
def test_documented_options_are_the_argument_spec(module, spec):
    fragment = literal(os.path.join(ROOT, 'plugins', 'doc_fragments', 'common.py'), 'DOCUMENTATION')
    documented = dict(fragment['options'], **doc(module)['options'])
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        assert documented[name]['type'] == option['type'], name
        assert documented[name].get('default') == option.get('default'), name
        assert documented[name].get('choices') == option.get('choices'), name
