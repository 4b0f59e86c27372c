from moddocs import module_doc

from ansible_collections.v3vee.palacios.plugins.module_utils import planner


def _doc():
    return module_doc('v3vee_vm')


def test_notes_matrix_equals_the_planner_table():
    notes = _doc()['notes']
    start = next(i for i, n in enumerate(notes) if n.startswith('From not in the kernel'))
    assert notes[start:start + len(planner.OBSERVED_STATES)] == planner.matrix_notes()


def test_state_choices_equal_the_planner_states():
    assert _doc()['options']['state']['choices'] == list(planner.DESIRED_STATES)
