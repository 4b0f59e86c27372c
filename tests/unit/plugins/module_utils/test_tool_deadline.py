"""Every tool run has a deadline (tools.subprocess_runner): past it the tool's whole process
group is killed, SIGTERM first, then SIGKILL, and ToolTimeout says what ran, for how long and how
it ended. Real subprocesses: the deadline, signals and process groups are the behaviour."""
import os
import signal
import sys
import time

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import tools
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import ToolTimeout, subprocess_runner

PY = sys.executable


def child(code):
    return [PY, '-c', 'import os, signal, subprocess, sys, time\n' + code]


def gone(pid, wait=5.0):
    """Whether process `pid` is dead (gone, or a zombie nobody reaped yet) within `wait` seconds."""
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            with open('/proc/%d/stat' % pid) as handle:
                if handle.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    return True
        except (IOError, OSError):
            return True
        time.sleep(0.05)
    return False


def test_a_tool_that_finishes_in_time_returns_its_exit_code_and_output(tmp_path):
    rc, out, err = subprocess_runner(child('print(os.getcwd(), os.environ["X"]); sys.stderr.write("e"); sys.exit(3)'),
                                     cwd=str(tmp_path), env_update={'X': 'y'}, timeout=30)
    assert (rc, out, err) == (3, '%s y\n' % tmp_path, 'e')


def test_arguments_reach_the_tool_verbatim_never_through_a_shell(tmp_path):
    word = '$HOME; touch pwned | `id` > out *'
    rc, out, _err = subprocess_runner(['/bin/echo', word], cwd=str(tmp_path), timeout=30)
    assert (rc, out) == (0, word + '\n')
    assert os.listdir(str(tmp_path)) == []


def test_a_tool_past_its_deadline_is_killed_with_sigterm_and_reported():
    started = time.time()
    with pytest.raises(ToolTimeout) as err:
        subprocess_runner(child('print("working", flush=True); time.sleep(60)'), timeout=1)
    elapsed = time.time() - started
    assert 1 <= elapsed < 1 + tools.KILL_GRACE
    exc = err.value
    assert exc.killed_by == 'SIGTERM' and exc.deadline == 1 and 1 <= exc.elapsed < 1 + tools.KILL_GRACE
    assert exc.stdout == 'working\n'                                  # output up to the kill is kept
    assert exc.tool == os.path.basename(PY) and exc.argv[0] == PY
    assert str(exc).startswith('%s did not finish within its deadline of 1s: ran 1.' % os.path.basename(PY))
    assert 'killed its process group with SIGTERM' in str(exc) and repr(exc.argv[2]) in str(exc)
    assert gone(exc.pid)


def test_a_tool_ignoring_sigterm_is_killed_with_sigkill_after_the_grace():
    started = time.time()
    with pytest.raises(ToolTimeout) as err:
        subprocess_runner(child('signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("stuck", flush=True)\n'
                                'sys.stderr.write("half a line"); sys.stderr.flush()\ntime.sleep(60)'), timeout=1)
    elapsed = time.time() - started
    assert 1 + tools.KILL_GRACE <= elapsed < 1 + tools.KILL_GRACE + tools.REAP_WAIT
    exc = err.value
    assert exc.killed_by == 'SIGKILL' and (exc.stdout, exc.stderr) == ('stuck\n', 'half a line')
    assert 'SIGKILL (it ignored SIGTERM for %ss)' % tools.KILL_GRACE in str(exc)
    assert gone(exc.pid)


def test_the_tools_children_die_with_it_even_those_ignoring_sigterm(tmp_path):
    """The tool's own session makes it and its children one process group; the whole group is killed."""
    pids = tmp_path / 'pids'
    code = ('signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
            'kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)]\n'
            'quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],\n'
            '                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n'
            'open(%r, "w").write(" ".join(str(k.pid) for k in kids + [quiet]))\n'
            'time.sleep(60)' % str(pids))
    with pytest.raises(ToolTimeout) as err:
        subprocess_runner(child(code), timeout=1.5)
    assert err.value.killed_by == 'SIGKILL'
    for pid in [int(p) for p in pids.read_text().split()]:
        assert gone(pid), pid


def test_a_leftover_child_of_a_tool_that_died_by_sigterm_is_killed_too(tmp_path):
    """The tool dies by SIGTERM, its child ignores it and holds no pipe: the group still gets SIGKILL."""
    pid_file = tmp_path / 'pid'
    code = ('kid = subprocess.Popen([sys.executable, "-c", "import signal, time; '
            'signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"],\n'
            '                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n'
            'open(%r, "w").write(str(kid.pid))\ntime.sleep(60)' % str(pid_file))
    with pytest.raises(ToolTimeout) as err:
        subprocess_runner(child(code), timeout=1.5)
    assert err.value.killed_by == 'SIGTERM'
    assert gone(int(pid_file.read_text()))


def test_a_tool_that_survives_sigkill_is_reported_as_stuck_not_waited_for(monkeypatch):
    """A process in an uninterruptible ioctl (D state) outlives SIGKILL until the ioctl returns;
    stood in for here by signals that do not arrive. The runner gives up after REAP_WAIT."""
    monkeypatch.setattr(tools, 'KILL_GRACE', 0.5)
    monkeypatch.setattr(tools, 'REAP_WAIT', 0.5)
    monkeypatch.setattr(tools, '_signal_group', lambda pgid, signum: None)
    started = time.time()
    with pytest.raises(ToolTimeout) as err:
        subprocess_runner(child('time.sleep(30)'), timeout=0.5)
    try:
        assert time.time() - started < 5
        exc = err.value
        assert exc.killed_by is None
        assert 'survived SIGTERM and SIGKILL (pid %d' % exc.pid in str(exc) and 'D state' in str(exc)
        assert not gone(exc.pid, wait=0.2)
    finally:
        os.killpg(err.value.pid, signal.SIGKILL)
        os.waitpid(err.value.pid, 0)


def test_a_tool_that_cannot_be_started_is_a_clear_error_not_a_traceback(tmp_path):
    tool = tmp_path / 'v3_launch'
    tool.write_text('#!/nonexistent/interpreter\n')
    tool.chmod(0o755)
    with pytest.raises(V3veeError, match=r'^Cannot run .*/v3_launch: No such file or directory\.$') as err:
        subprocess_runner([str(tool), '/dev/v3-vm0'], timeout=5)
    assert err.value.tool == 'v3_launch' and err.value.argv == [str(tool), '/dev/v3-vm0']
