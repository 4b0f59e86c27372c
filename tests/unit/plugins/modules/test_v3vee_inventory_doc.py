import yaml
from moddocs import module_doc

from ansible_collections.v3vee.palacios.plugins.doc_fragments.common import ModuleDocFragment
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory_run import OPERATIONS
from ansible_collections.v3vee.palacios.plugins.modules import v3vee_inventory

KEYS = ('type', 'default', 'choices', 'elements', 'required')


def _docs():
    return dict((name, module_doc('v3vee_inventory', name)) for name in ('DOCUMENTATION', 'EXAMPLES', 'RETURN'))


def _shape(options, sub='suboptions'):
    shape = {}
    for name, spec in options.items():
        entry = dict((key, spec.get(key)) for key in KEYS if spec.get(key) not in (None, False))
        if spec.get(sub if sub in spec else 'options'):
            entry['options'] = _shape(spec.get(sub) or spec.get('options'))
        shape[name] = entry
    return shape


def test_documentation_matches_the_argument_spec():
    doc = dict(_docs()['DOCUMENTATION']['options'])
    doc.update(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options'])
    assert _shape(doc) == _shape(v3vee_inventory.inventory_argument_spec(), sub='options')


def test_every_operation_has_an_example_and_a_return_value():
    examples = _docs()['EXAMPLES']
    used = set(key for task in examples for key in (task.get('v3vee.palacios.v3vee_inventory') or {}))
    assert set(OPERATIONS) <= used
    returned = _docs()['RETURN']
    assert set(OPERATIONS) <= set(returned)
