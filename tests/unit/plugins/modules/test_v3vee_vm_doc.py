import ast
import os

import yaml

from ansible_collections.v3vee.palacios.plugins.module_utils import planner

MODULE = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'plugins', 'modules', 'v3vee_vm.py')


def _doc():
    tree = ast.parse(open(MODULE).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == 'DOCUMENTATION':
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError('no DOCUMENTATION')


def test_notes_matrix_equals_the_planner_table():
    notes = _doc()['notes']
    start = next(i for i, n in enumerate(notes) if n.startswith('From not in the kernel'))
    assert notes[start:start + len(planner.OBSERVED_STATES)] == planner.matrix_notes()


def test_state_choices_equal_the_planner_states():
    assert _doc()['options']['state']['choices'] == list(planner.DESIRED_STATES)
