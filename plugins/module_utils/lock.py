# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lock. Nothing serialises v3 tool runs (gotcha 17): two playbooks acting on one
host could interleave create/launch/free and pick each other's slots, so every module run
that changes the host holds this lock for its whole duration."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os
import time

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError

# flock has no timeout: the wait is a non-blocking attempt repeated at growing intervals, never
# longer than POLL_MAX and never past the deadline, so lock_timeout is kept to a few milliseconds.
POLL_MIN = 0.005
POLL_MAX = 0.05


class LockTimeout(V3veeError):
    """The host lock was not free within lock_timeout; `waited` says how long the run waited."""

    def __init__(self, msg, waited):
        super(LockTimeout, self).__init__(msg)
        self.waited = waited

    def fail_kwargs(self):
        out = super(LockTimeout, self).fail_kwargs()
        out['lock_wait'] = round(self.waited, 3)
        return out


class HostLock(object):
    """shared=True: a reader's lock. It waits for a run that changes the host (so the kernel and the
    inventory are read as that run left them, not half-way) and lets other readers in; it never
    creates the lock file (no file: no run has changed this host through the collection).

    `waited`: the seconds spent waiting for the lock (0 when it was free)."""

    def __init__(self, path, timeout, shared=False):
        self.path = path
        self.timeout = timeout
        self.shared = shared
        self.handle = None
        self.waited = 0.0

    def __enter__(self):
        if self.shared:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            except (IOError, OSError):
                return self
        else:
            directory = os.path.dirname(self.path) or '.'
            try:
                if not os.path.isdir(directory):
                    os.makedirs(directory, 0o700)
                # O_NOFOLLOW: a symlink planted in its place would make us create or lock another file.
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                raise V3veeError('Cannot open the host lock %s: %s. Nothing was run.' % (self.path, exc.strerror or exc))
        try:
            self.waited = self._acquire(fd)
        except BaseException:
            os.close(fd)
            raise
        self.handle = fd
        return self

    def _acquire(self, fd):
        """Take the lock on fd by the deadline; returns the seconds waited."""
        mode = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        start = time.monotonic()
        deadline = start + max(self.timeout, 0)
        pause = POLL_MIN
        while True:
            try:
                fcntl.flock(fd, mode)
                return time.monotonic() - start
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            now = time.monotonic()
            if now >= deadline:
                waited = now - start
                raise LockTimeout('Another v3vee.palacios run holds the host lock %s; gave up after waiting %.1fs '
                                  '(lock_timeout: %s). Raise lock_timeout, or find the other run (fuser -v %s '
                                  'lists the processes that have it open).'
                                  % (self.path, waited, self.timeout, self.path), waited)
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, POLL_MAX)

    def __exit__(self, *exc):
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            os.close(self.handle)
            self.handle = None
        return False
