import subprocess
import sys
import time

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.lock import HostLock

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
