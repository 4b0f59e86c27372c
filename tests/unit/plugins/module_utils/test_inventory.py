import os
import stat

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils import inventory

DEF = {'image': None, 'config': '/srv/a.xml', 'config_options': {'mem': '256'}}


def test_creates_private_directory_and_file(tmp_path):
    path = tmp_path / 'lib' / 'inventory.db'
    inventory.InventoryStore(str(path)).open().close()
    assert stat.S_IMODE(os.stat(str(path.parent)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600


def test_round_trip_and_timestamps(tmp_path):
    store = inventory.InventoryStore(str(tmp_path / 'i.db'))
    with store.transaction():
        store.put(inventory.new_record('web1', DEF, 0, '/dev/v3-vm0', 'running', 'running'))
    rec = store.get('web1')
    assert rec['config_options'] == {'mem': '256'} and rec['slot'] == 0 and rec['desired_state'] == 'running'
    same = inventory.new_record('web1', DEF, 0, '/dev/v3-vm0', 'running', 'running', previous=rec)
    assert same['updated_at'] == rec['updated_at'] and same['created_at'] == rec['created_at']


def test_failed_run_rolls_back(tmp_path):
    store = inventory.InventoryStore(str(tmp_path / 'i.db'))
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put(inventory.new_record('web1', DEF))
            raise RuntimeError('boom')
    assert store.get('web1') is None


def test_engine_errors_keep_the_truth_recorded_before_them(tmp_path):
    store = inventory.InventoryStore(str(tmp_path / 'i.db'))
    with pytest.raises(V3veeError):
        with store.transaction():
            store.put(inventory.new_record('web1', DEF, 3, '/dev/v3-vm3', 'stopped', 'running'))
            raise V3veeError('launch did not take effect')
    assert store.get('web1')['slot'] == 3


def test_readonly_store_of_a_missing_database_is_empty_and_creates_nothing(tmp_path):
    store = inventory.InventoryStore(str(tmp_path / 'no' / 'i.db'), readonly=True)
    with store.transaction():
        assert store.all() == [] and store.get('x') is None
    assert not os.path.exists(str(tmp_path / 'no'))


def test_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / 'i.db')
    store = inventory.InventoryStore(path).open()
    store.conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    store.close()
    with pytest.raises(V3veeError, match='schema version 99'):
        inventory.InventoryStore(path).open()


def test_foreign_database_is_not_touched(tmp_path):
    import sqlite3
    path = str(tmp_path / 'i.db')
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE other (x)')
    conn.commit()
    conn.close()
    with pytest.raises(V3veeError, match='not written by'):
        inventory.InventoryStore(path).open()


def test_record_needs_image_or_config(tmp_path):
    import sqlite3
    store = inventory.InventoryStore(str(tmp_path / 'i.db')).open()
    with pytest.raises(sqlite3.IntegrityError):
        store.put(inventory.new_record('x', {'image': None, 'config': None}))
