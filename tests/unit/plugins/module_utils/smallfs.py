"""A real small file system for storage-fault tests: a tmpfs of a few hundred KiB mounted under
the test's temporary directory (the tests run as root, as CI does), which a test can fill up
or remount read-only. Unmounted when the test ends."""
import os
import subprocess

import pytest


class SmallFs(object):
    def __init__(self, path):
        self.path = path

    def remount(self, option):
        subprocess.run(['mount', '-o', 'remount,%s' % option, self.path], check=True)

    def fill(self):
        """Take every free byte (what a full disk looks like to SQLite and to a writer)."""
        fd = os.open(os.path.join(self.path, 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b'\0' * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)

    def free(self):
        os.unlink(os.path.join(self.path, 'filler'))


@pytest.fixture
def small_fs(tmp_path):
    path = str(tmp_path / 'fs')
    os.mkdir(path)
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root (CI runs the tests as root)')
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', path],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if proc.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (%s): the storage-fault tests need one' % proc.stdout.strip())
    try:
        yield SmallFs(path)
    finally:
        subprocess.run(['umount', '-l', path], check=False)
