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


class HostLock(object):
    """shared=True: a reader's lock. It waits for a run that changes the host (so the kernel and the
    inventory are read as that run left them, not half-way) and lets other readers in; it never
    creates the lock file (no file: no run has changed this host through the collection)."""

    def __init__(self, path, timeout, shared=False):
        self.path = path
        self.timeout = timeout
        self.shared = shared
        self.handle = None
        self.waited = 0.0

    def __enter__(self):
        if self.shared:
            try:
                fd = os.open(self.path, os.O_RDONLY)
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
        start = time.time()
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.time() - start >= self.timeout:
                    os.close(fd)
                    raise V3veeError('Another v3vee.palacios run holds the host lock %s; gave up after %ss. '
                                     'Raise lock_timeout, or find the other run.' % (self.path, self.timeout))
                time.sleep(0.1)
        self.waited = time.time() - start
        self.handle = fd
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            os.close(self.handle)
            self.handle = None
        return False
