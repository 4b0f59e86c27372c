"""A run killed while its COMMIT was writing the inventory database: the next reader (v3vee_facts,
v3vee_vm_info, check mode) gets the last committed inventory, not an error."""
import os
import sqlite3
import subprocess
import sys

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils import inventory

# A writer whose changes reach the database file before COMMIT finishes (a one-page cache spills them,
# as COMMIT itself writes them), killed then: the journal holds the pages to restore (a hot journal).
KILLED_WRITER = '''import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size=1")
conn.execute("BEGIN IMMEDIATE")
conn.execute("DELETE FROM vms")
for i in range(300):
    conn.execute("INSERT INTO vms (name, image, created_at, updated_at) VALUES (?, ?, 'x', 'x')", ("n%d" % i, "/i" * 200))
os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture
def killed_commit(tmp_path):
    path = str(tmp_path / 'inventory.db')
    store = inventory.InventoryStore(path)
    with store.transaction():
        for name in ('web1', 'web2'):
            store.put(inventory.new_record(name, {'image': '/srv/%s.img' % name}))
    store.close()
    proc = subprocess.run([sys.executable, '-c', KILLED_WRITER, path], check=False)
    assert proc.returncode == -9 and os.path.exists(path + '-journal')
    with pytest.raises(sqlite3.OperationalError, match='readonly'):   # what a plain read-only open meets
        sqlite3.connect('file:%s?mode=ro' % path, uri=True).execute('SELECT count(*) FROM vms').fetchone()
    return path


def test_a_reader_after_a_run_killed_in_its_commit_gets_the_last_committed_inventory(killed_commit):
    store = inventory.InventoryStore(killed_commit, readonly=True)
    with store.transaction():
        assert [r['name'] for r in store.all()] == ['web1', 'web2']
    assert not os.path.exists(killed_commit + '-journal')


def test_a_reader_that_may_not_write_is_told_what_happened_and_what_rolls_it_back(killed_commit, monkeypatch):
    monkeypatch.setattr(inventory.os, 'access', lambda path, mode: False)
    with pytest.raises(V3veeError, match=r'unfinished commit of a run that was killed .*-journal.*Any v3vee.palacios '
                                         r'run that writes the inventory \(not in check mode\) rolls it back'):
        inventory.InventoryStore(killed_commit, readonly=True).open()
    monkeypatch.undo()
    assert [r['name'] for r in inventory.InventoryStore(killed_commit).all()] == ['web1', 'web2']
