"""Killed at every point (see killpoints.py): every module operation that runs v3 tools, killed
with SIGKILL (its whole process tree) before and after each tool acts and during its inventory
commit, then run again. The figures are printed at the end of the run (conftest.py)."""
import json

import pytest

import killpoints

CASES = dict((case.name, case) for case in killpoints.all_cases())
# Two groups of about the same work (one per xdist worker); each runs its hosts in lockstep rounds.
GROUPS = {
    'v3vee_vm-from-nothing-stopped-running': [n for n in CASES if n.split('_')[:2] in (
        ['vm', 'none'], ['vm', 'stopped'], ['vm', 'running'])] + ['mem_grow', 'mem_shrink'],
    'v3vee_vm-from-paused-error-v3vee_vms-v3vee_inventory': [n for n in CASES if n.split('_')[:2] in (
        ['vm', 'paused'], ['vm', 'error'])] + ['vms_bulk', 'inv_recover', 'inv_gui_export', 'inv_adopt'],
}


def test_the_groups_cover_every_operation_once():
    names = [name for group in GROUPS.values() for name in group]
    assert sorted(names) == sorted(CASES)


@pytest.fixture(scope='session')
def template(tmp_path_factory):
    return killpoints.make_template(str(tmp_path_factory.mktemp('kill-template')))


@pytest.mark.parametrize('group', sorted(GROUPS))
def test_a_run_killed_at_any_point_converges_when_run_again(group, template, tmp_path, record_property):
    harness = killpoints.Harness(str(tmp_path), template, [CASES[name] for name in GROUPS[group]]).run()
    figures = harness.figures()
    record_property('killpoints', json.dumps(figures))
    assert not figures['errors'], '\n\n'.join(figures['errors'])
    failures = [f for row in figures['rows'] for f in row['failures']]
    assert not failures, '%d of %d kill points failed:\n%s' % (len(failures), figures['expected'], '\n'.join(failures))
    assert sum(row['points'] for row in figures['rows']) == figures['expected']
