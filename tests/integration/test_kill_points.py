"""Killed at every point (see killpoints.py): every module operation that runs v3 tools, killed
with SIGKILL (its whole process tree) before and after each tool acts and during its inventory
commit, then run again. The figures are printed at the end of the run (conftest.py)."""
import json
import os
import signal
import subprocess
import sys

import pytest

import killpoints

CASES = dict((case.name, case) for case in killpoints.all_cases())


def _rows(*rows):
    return [name for name in CASES if name.split('_')[:2] in [['vm', row] for row in rows]]


# Two groups of about the same work (one per xdist worker), each run in lockstep rounds.
GROUPS = {
    'vm-from-none-stopped-running+memory+recover+save': _rows('none', 'stopped', 'running')
    + ['mem_grow', 'mem_shrink', 'inv_recover', 'ck_save'],
    'vm-from-paused-error+vms+gui_export+adopt+restore': _rows('paused', 'error')
    + ['vms_bulk', 'inv_gui_export', 'inv_adopt', 'ck_restore'],
}


def test_the_groups_cover_every_operation_once():
    names = [name for group in GROUPS.values() for name in group]
    assert sorted(names) == sorted(CASES)


# Like ansible-playbook -> worker -> module -> v3 tool, where the worker and the tool start sessions
# of their own: a process-group kill of the top would miss them, the tree walk must not.
TREE = '''import subprocess, sys, time
depth = int(sys.argv[1])
if depth:
    subprocess.Popen([sys.executable, "-c", sys.argv[2], str(depth - 1), sys.argv[2]], start_new_session=True)
else:
    print(flush=True)
time.sleep(60)
'''


def test_the_kill_reaches_every_process_of_the_tree_in_sessions_of_their_own():
    top = subprocess.Popen([sys.executable, '-c', TREE, '3', TREE], stdout=subprocess.PIPE)
    top.stdout.readline()                                  # the deepest one is up
    tree = killpoints.descendants(top.pid, killpoints.proc_table())
    assert len(tree) == 3 and all(os.getsid(pid) != os.getsid(top.pid) for pid in tree)
    stopped = killpoints.freeze([top.pid])
    assert stopped == set(tree + [top.pid])
    killpoints.signal_all(stopped, signal.SIGKILL)
    assert top.wait(timeout=10) == -signal.SIGKILL
    killpoints.wait_gone(stopped)
    assert not [pid for pid in stopped if killpoints.alive(pid)]


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
