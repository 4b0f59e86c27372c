# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running v3 tools (argv lists, never a shell) and verifying every step by re-reading /proc.

Exit codes lie (gotcha 1: v3_launch always exits 0, v3_stop/v3_pause/v3_continue exit 0 when
the kernel refused), so no step is believed until /proc shows its result.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import signal
import time

from ansible_collections.v3vee.palacios.plugins.module_utils.common import TOOL_SEARCH_DIRS, V3veeError, find_executable
from ansible_collections.v3vee.palacios.plugins.module_utils.planner import STEP_RESULT, STEP_TOOLS

CREATED_RE = re.compile(r'created at (/dev/v3-vm(\d+))')
SIGSEGV_CODES = (-11, 139)


# Past a tool's deadline its process group gets SIGTERM, then SIGKILL after KILL_GRACE seconds;
# REAP_WAIT bounds the wait for it to die after SIGKILL (a process stuck in an ioctl, D state, dies
# only when the ioctl returns).
KILL_GRACE = 2
REAP_WAIT = 5
# A run that names no deadline (the kernel-log readers of v3vee_facts): no tool run is unbounded.
DEFAULT_DEADLINE = 60
# v3_create reads its image (or XML and <file>s) and copies it into the kernel: its deadline is
# `timeout` plus one second per CREATE_BYTES_PER_SECOND of that data.
CREATE_BYTES_PER_SECOND = 16 * 1024 * 1024


class ToolResult(object):
    def __init__(self, argv, rc, stdout, stderr):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr


class ToolTimeout(V3veeError):
    """A tool that ran past its deadline and was killed (or could not be). The engine adds what
    /proc shows afterwards (found()) before reporting it."""

    def __init__(self, argv, deadline, elapsed, killed_by, stdout, stderr, pid):
        tool = os.path.basename(argv[0])
        if killed_by is None:
            how = ('it survived SIGTERM and SIGKILL (pid %d, its process group: stuck in the kernel, D state, it '
                   'dies only when its ioctl returns and may still act then; see ps -o pid,stat,wchan -g %d and '
                   'dmesg | grep palacios)' % (pid, pid))
        elif killed_by == 'SIGKILL':
            how = 'killed its process group with SIGKILL (it ignored SIGTERM for %ss)' % KILL_GRACE
        else:
            how = 'killed its process group with SIGTERM'
        super(ToolTimeout, self).__init__(
            '%s did not finish within its deadline of %ss: ran %.1fs, %s. argv: %s.'
            % (tool, _seconds(deadline), elapsed, how, argv), tool=tool, argv=argv, stdout=stdout, stderr=stderr)
        self.deadline, self.elapsed, self.killed_by, self.pid = deadline, elapsed, killed_by, pid

    def found(self, state, observed=None):
        """Add the state found in /proc after the kill."""
        self.msg += ' Found afterwards: %s.' % state
        self.observed = observed


def _seconds(value):
    return ('%.1f' % value).rstrip('0').rstrip('.')


def _decode(data):
    return (data or b'').decode('utf-8', 'replace')


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except OSError:  # the whole group is gone already
        pass


def subprocess_runner(argv, cwd=None, env_update=None, timeout=DEFAULT_DEADLINE):
    """Run argv (a list, never through a shell) and return (rc, stdout, stderr).

    The tool runs in its own session, so it and every process it starts form one process group;
    past `timeout` seconds that whole group gets SIGTERM, then SIGKILL, and ToolTimeout is raised
    with the output read up to the kill. (AnsibleModule.run_command has no deadline.)"""
    import subprocess
    env = dict(os.environ)
    env.update(env_update or {})
    started = time.time()
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:  # not executable, a bad interpreter line, a cwd that is gone: nothing ran
        raise V3veeError('Cannot run %s: %s.' % (argv[0], exc.strerror or exc), tool=os.path.basename(argv[0]),
                         argv=list(argv))
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, _decode(out), _decode(err)
    except subprocess.TimeoutExpired:
        pass
    # Not reaped yet, so its pid still names the group even if the leader already exited.
    out = err = b''
    killed_by = None
    for signum, name, wait in ((signal.SIGTERM, 'SIGTERM', KILL_GRACE), (signal.SIGKILL, 'SIGKILL', REAP_WAIT)):
        _signal_group(proc.pid, signum)
        try:
            out, err = proc.communicate(timeout=wait)
            killed_by = name
            break
        except subprocess.TimeoutExpired as exc:
            out, err = exc.stdout or out, exc.stderr or err
    if killed_by is not None:
        # The leader is dead; anything of its group still alive (a child holding no pipe) goes too.
        _signal_group(proc.pid, signal.SIGKILL)
    else:
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()
    raise ToolTimeout(list(argv), timeout, time.time() - started, killed_by, _decode(out), _decode(err), proc.pid)


class Tools(object):
    """Finds and runs the v3 tools; remembers every argv it ran (the modules return them)."""

    def __init__(self, settings, runner):
        self.settings = settings
        self.runner = runner
        self.commands = []
        # Called once, before the first tool runs: every tool a module runs may change the host,
        # so the session remembers what the host looked like (see module.HostSession).
        self.before_first_run = None

    def search_dirs(self):
        if self.settings.tools_dir:
            return [self.settings.tools_dir]
        return [d for d in os.environ.get('PATH', '').split(os.pathsep) if d] + list(TOOL_SEARCH_DIRS)

    def find(self, tool):
        """Path of the tool, or None."""
        return find_executable(tool, self.search_dirs())

    def which(self, tool):
        path = self.find(tool)
        if path is not None:
            return path
        dirs = self.search_dirs()
        raise V3veeError('Palacios tool %s not found (looked in %s). Install the v3 tools (role '
                         'v3vee.palacios.palacios_module) or set tools_dir / V3VEE_TOOLS_DIR.'
                         % (tool, ', '.join(dirs)), tool=tool)

    def env(self):
        # Ansible runs modules in a non-login shell (observed 10): no /etc/profile.d, so the
        # tool directory (v3_mem -r offline runs `v3_mem` through PATH) and PALACIOS_DIR are
        # set explicitly.
        env = {'LC_ALL': 'C'}
        if self.settings.tools_dir:
            env['PATH'] = self.settings.tools_dir + os.pathsep + os.environ.get('PATH', '/usr/bin:/bin')
        if self.settings.palacios_dir:
            env['PALACIOS_DIR'] = self.settings.palacios_dir
        return env

    def run(self, tool, args, timeout, cwd=None):
        """Run the tool; past `timeout` seconds it is killed and ToolTimeout raised."""
        argv = [self.which(tool)] + [str(a) for a in args]
        if not self.commands and self.before_first_run is not None:
            self.before_first_run()
        self.commands.append(argv)
        rc, out, err = self.runner(argv, cwd=cwd, env_update=self.env(), timeout=timeout)
        return ToolResult(argv, rc, out, err)


def tool_error(msg, result, observed=None, hint=None):
    return V3veeError(msg, tool=os.path.basename(result.argv[0]), argv=result.argv, rc=result.rc,
                      stdout=result.stdout, stderr=result.stderr, observed=observed, hint=hint)


def entry_dict(entry):
    return dict(entry._asdict()) if entry is not None else None


KERNEL_LOG_HINT = 'The kernel logs the reason: dmesg | grep palacios.'


class Executor(object):
    """Runs one lifecycle step for a wave of VMs and verifies them all in /proc."""

    def __init__(self, tools, reader, dev_dir, wait=True, timeout=60, poll=0.05):
        self.tools = tools
        self.reader = reader
        self.dev_dir = dev_dir
        self.wait = wait
        self.timeout = timeout
        self.poll = poll

    def device(self, slot):
        return os.path.join(self.dev_dir, 'v3-vm%d' % slot)

    def create_deadline(self, job):
        """timeout, plus the time to read what v3_create reads at CREATE_BYTES_PER_SECOND: a
        large image takes longer to copy into the kernel than a lifecycle ioctl takes."""
        definition = job.plan.definition
        paths = [definition['image']] if definition.get('image') else [definition['config']] + list(
            job.shape.files if job.shape is not None else [])
        size = 0
        for path in paths:
            try:
                size += os.path.getsize(path)
            except OSError:  # v3_create reports it; the deadline does not depend on it
                pass
        return self.timeout + size // CREATE_BYTES_PER_SECOND

    def poll_until(self, check):
        """Call check() until it returns true, or once if wait is off. Returns its last value."""
        deadline = time.time() + (self.timeout if self.wait else 0)
        while True:
            value = check()
            if value or time.time() >= deadline:
                return value
            time.sleep(self.poll)

    def run_wave(self, step, jobs, guests=None):
        """Run `step` for every job, then verify them all; each /proc read serves the whole wave.

        A job has name, current (its verified kernel entry) and, for create, create_args; the step
        sets job.current to what /proc shows after it, or job.error. `guests`: a /proc read taken
        since the last tool ran, against which each slot is re-checked before acting (slots are
        reused, gotcha 10); None reads /proc now. Returns the last read, which can serve the next wave.
        """
        if guests is None and step != 'create':
            guests = self.reader.guests()
        started = []
        for job in jobs:
            try:
                started.append(self._start(step, job, guests))
            except V3veeError as err:
                job.error = err
        if not started:
            return guests
        last = {}

        def settled():
            last['guests'] = now = self.reader.guests()
            for item in list(started):
                job, slot, _result = item
                try:
                    done, entry = self._verified(step, job.name, slot, now)
                except V3veeError as err:
                    job.error = err
                    started.remove(item)
                    continue
                if done:
                    job.current = entry
                    started.remove(item)
            return not started

        pending = list(started)
        self.poll_until(settled)
        for job, slot, result in started:
            job.error = self._not_taken(step, job.name, slot, result, last['guests'])
        if step == 'create':
            created = [(job, slot, result) for job, slot, result in pending if job.error is None]
            # udev creates the node asynchronously (2.5): later steps open it.
            self.poll_until(lambda: all(os.path.exists(self.device(slot)) for _job, slot, _r in created))
            for job, slot, result in created:
                if not os.path.exists(self.device(slot)):
                    job.error = tool_error('VM %r was created in slot %d but %s did not appear.'
                                           % (job.name, slot, self.device(slot)), result,
                                           observed=entry_dict(job.current))
        return last['guests']

    def _start(self, step, job, guests):
        """Run the step's tool for one job; returns (job, slot, ToolResult)."""
        if step == 'create':
            args, cwd = job.create_args
            result = self.tools.run('v3_create', args, self.create_deadline(job), cwd=cwd)
            if result.rc in SIGSEGV_CODES:
                raise tool_error('v3_create crashed (SIGSEGV) while building VM %r: the XML or one of its files '
                                 'could not be read.' % job.name, result)
            match = CREATED_RE.search(result.stdout)
            if result.rc != 0 or not match:
                raise tool_error('The kernel refused to create VM %r (v3_create: "%s").'
                                 % (job.name, (result.stdout.strip().splitlines() or ['no output'])[-1]), result,
                                 hint=KERNEL_LOG_HINT)
            return job, int(match.group(2)), result
        slot = job.current.index
        if in_slot(guests, slot, job.name) is None:
            raise V3veeError('VM %r vanished from /dev/v3-vm%d before %s.' % (job.name, slot, step))
        # free takes a plain decimal index: v3_free parses loosely (leading 0 = octal, junk = VM 0; gotcha 8).
        args = [str(slot)] if step == 'free' else [self.device(slot)]
        return job, slot, self.tools.run(STEP_TOOLS[step], args, self.timeout)

    @staticmethod
    def _verified(step, name, slot, guests):
        """(whether /proc shows the step took effect, the VM's entry now)."""
        if step == 'free':
            return not any(e.index == slot and e.name == name for e in guests), None
        now = in_slot(guests, slot, name)
        return now is not None and now.state == STEP_RESULT[step], now

    def _not_taken(self, step, name, slot, result, guests):
        if step == 'free':
            return tool_error('v3_free of VM %r (slot %d) did not take effect.' % (name, slot), result,
                              observed=entry_dict(in_slot(guests, slot, name)), hint=KERNEL_LOG_HINT)
        observed = in_slot(guests, slot, name)
        if step == 'create':
            return tool_error('v3_create reported VM %r at /dev/v3-vm%d but /proc does not show it there stopped.'
                              % (name, slot), result, observed=entry_dict(observed))
        return tool_error('%s of VM %r did not take effect: /proc shows %s, expected %s (%s exited %s; its '
                          'exit code does not tell).'
                          % (step, name, observed.state if observed else 'no VM', STEP_RESULT[step],
                             STEP_TOOLS[step], result.rc), result, observed=entry_dict(observed),
                          hint=KERNEL_LOG_HINT)


def in_slot(guests, slot, name):
    """The entry at slot in a /proc read, refusing a slot that now holds another VM (slots are
    reused, gotcha 10)."""
    for entry in guests:
        if entry.index == slot:
            if entry.name != name:
                raise V3veeError('/dev/v3-vm%d now holds VM %r, not %r (slots are reused after a free). '
                                 'Refusing to act on it; run v3vee.palacios.v3vee_inventory with '
                                 'reconcile: true.' % (slot, entry.name, name), observed=entry_dict(entry))
            return entry
    return None
