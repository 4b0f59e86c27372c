import subprocess
import sys
import time

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings
from ansible_collections.v3vee.palacios.plugins.module_utils.lock import HostLock, LockTimeout

HOLDER = ('import fcntl, os, sys, time\n'
          'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n'
          'fcntl.flock(fd, fcntl.LOCK_EX)\n'
          'print("held", flush=True)\n'
          'time.sleep(float(sys.argv[2]))\n')


def test_second_holder_times_out_with_a_clear_message(tmp_path):
    path = str(tmp_path / 'inventory.db.lock')
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, path, '5'], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b'held'
        with pytest.raises(V3veeError, match='holds the host lock'):
            with HostLock(path, 0.3):
                pass
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def held(tmp_path):
    """A lock file another process holds exclusively (a run changing the host)."""
    path = str(tmp_path / 'inventory.db.lock')
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, path, '60'], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b'held'
        yield path
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize('shared', [False, True], ids=['writer', 'reader'])
@pytest.mark.parametrize('timeout', [0, 1])
def test_lock_timeout_is_honoured_within_a_second(held, shared, timeout):
    start = time.monotonic()
    with pytest.raises(LockTimeout) as caught:
        with HostLock(held, timeout, shared=shared):
            pass
    elapsed = time.monotonic() - start
    assert timeout <= caught.value.waited <= elapsed <= timeout + 1
    assert caught.value.fail_kwargs()['lock_wait'] == round(caught.value.waited, 3)
    assert 'lock_timeout: %d' % timeout in caught.value.msg


def test_a_negative_lock_timeout_is_refused():
    with pytest.raises(V3veeError, match='lock_timeout must be 0 or more'):
        Settings.resolve({'lock_timeout': -1}, environ={})


def test_lock_is_taken_once_the_holder_releases_it(tmp_path):
    path = str(tmp_path / 'inventory.db.lock')
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, path, '0.5'], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b'held'
        start = time.time()
        with HostLock(path, 30) as lock:
            assert lock.waited > 0
        assert time.time() - start < 30
    finally:
        holder.wait()
