"""Storage faults of the inventory database: each gives a clear error (or a safe, reported
repair of modes), and the database file is never overwritten, truncated or re-created."""
import os
import re
import shutil
import sqlite3
import stat

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils import inventory
import smallfs

small_fs = smallfs.small_fs  # the fixture

DEF = {'image': None, 'config': '/srv/a.xml', 'config_options': {'mem': '256'}}


def record(name, **options):
    return inventory.new_record(name, dict(DEF, config_options=options or DEF['config_options']))


def make_db(path, names=('web1',)):
    store = inventory.InventoryStore(path)
    with store.transaction():
        for name in names:
            store.put(record(name))
    store.close()
    return read(path)


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def run_that_writes(path, name='new'):
    store = inventory.InventoryStore(path)
    try:
        with store.transaction():
            store.put(record(name))
    finally:
        store.close()


@pytest.mark.parametrize('damage', ['garbage', 'header', 'truncated'])
def test_a_damaged_database_is_refused_and_left_as_it_is(tmp_path, damage):
    path = str(tmp_path / 'i.db')
    data = make_db(path, ['vm%03d' % i for i in range(300)])
    if damage == 'garbage':
        data = b'this is not SQLite\n' * 300
    elif damage == 'header':
        data = b'\0' * 100 + data[100:]
    else:
        data = data[:len(data) // 2]
    with open(path, 'wb') as handle:
        handle.write(data)
    for readonly in (False, True):
        with pytest.raises(V3veeError, match='not a usable SQLite database|is damaged'):
            inventory.InventoryStore(path, readonly=readonly).open()
    with pytest.raises(V3veeError):
        run_that_writes(path)
    assert read(path) == data


@pytest.mark.parametrize('tables', [['CREATE TABLE other (x)'],
                                    ['CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)',
                                     "INSERT INTO meta VALUES ('version', '3')"],
                                    ['CREATE TABLE vms (name)', 'CREATE TABLE meta (key, value)']])
def test_another_applications_database_is_refused_and_left_as_it_is(tmp_path, tables):
    path = str(tmp_path / 'i.db')
    conn = sqlite3.connect(path)
    for statement in tables:
        conn.execute(statement)
    conn.commit()
    conn.close()
    os.chmod(path, 0o644)
    before = read(path)
    with pytest.raises(V3veeError, match='not written by v3vee.palacios'):
        run_that_writes(path)
    assert read(path) == before
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # not ours: not even its mode is touched


def test_a_newer_schema_is_refused_and_left_as_it_is(tmp_path):
    path = str(tmp_path / 'i.db')
    make_db(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(inventory.SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    before = read(path)
    with pytest.raises(V3veeError, match='Upgrade the v3vee.palacios collection'):
        run_that_writes(path)
    assert read(path) == before


def test_a_read_only_file_system_fails_the_run_and_reads_still_work(small_fs):
    path = os.path.join(small_fs.path, 'i.db')
    before = make_db(path)
    small_fs.remount('ro')
    with pytest.raises(V3veeError, match=str(path)) as err:
        run_that_writes(path)
    assert 'readonly' in str(err.value) or 'Read-only' in str(err.value)
    assert read(path) == before
    store = inventory.InventoryStore(path, readonly=True)
    assert [r['name'] for r in store.all()] == ['web1']


def test_a_full_disk_during_the_commit_records_nothing_and_keeps_the_database(small_fs):
    path = os.path.join(small_fs.path, 'i.db')
    before = make_db(path, ['web1', 'web2'])
    small_fs.fill()
    store = inventory.InventoryStore(path)
    with pytest.raises(V3veeError, match='Nothing of this run was recorded') as err:
        with store.transaction():
            for i in range(50):  # far more than fits: SQLite needs pages and a journal for them
                store.put(record('big%02d' % i, blob='x' * 8000))
    store.close()
    assert 'full' in str(err.value)
    assert read(path) == before
    small_fs.free()
    assert [r['name'] for r in inventory.InventoryStore(path).all()] == ['web1', 'web2']


def test_a_full_disk_before_a_schema_upgrade_leaves_the_old_schema(small_fs, monkeypatch):
    path = os.path.join(small_fs.path, 'i.db')
    before = make_db(path, ['web1'])
    upgrade(monkeypatch)
    small_fs.fill()
    with pytest.raises(V3veeError, match='was not upgraded'):
        inventory.InventoryStore(path).open()
    assert read(path) == before
    assert sorted(os.listdir(small_fs.path)) == ['filler', 'i.db']


def upgrade(monkeypatch):
    """A collection one schema version newer than this one (what every future migration looks like)."""
    monkeypatch.setattr(inventory, 'SCHEMA_VERSION', inventory.SCHEMA_VERSION + 1)
    monkeypatch.setattr(inventory, 'MIGRATIONS', inventory.MIGRATIONS + (('ALTER TABLE vms ADD COLUMN note TEXT',),))


def test_a_schema_upgrade_first_copies_the_database_beside_it(tmp_path, monkeypatch):
    path = str(tmp_path / 'i.db')
    before = make_db(path, ['web1', 'web2'])
    old = inventory.SCHEMA_VERSION
    upgrade(monkeypatch)
    store = inventory.InventoryStore(path).open()
    backup = store.backup
    assert os.path.basename(backup).startswith('i.db.bak-v%d-' % old)
    assert read(backup) == before
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert any(backup in w for w in store.warnings)
    assert [r['name'] for r in store.all()] == ['web1', 'web2']
    assert store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(old + 1)
    store.close()
    # Opening the upgraded database again makes no second backup.
    assert inventory.InventoryStore(path).open().backup is None


def test_a_database_deleted_during_the_run_is_not_recreated(tmp_path):
    path = str(tmp_path / 'i.db')
    make_db(path)
    store = inventory.InventoryStore(path)
    with pytest.raises(V3veeError, match='was deleted during this run; nothing of this run was recorded'):
        with store.transaction():
            store.put(record('new'))
            os.unlink(path)
    store.close()
    assert not os.path.exists(path)


def test_a_database_replaced_during_the_run_is_left_to_whoever_replaced_it(tmp_path):
    path = str(tmp_path / 'i.db')
    make_db(path)
    other = str(tmp_path / 'other.db')
    replacement = make_db(other, ['theirs'])
    store = inventory.InventoryStore(path)
    with pytest.raises(V3veeError, match='was replaced by another file during this run'):
        with store.transaction():
            store.put(record('new'))
            os.rename(other, path)
    store.close()
    assert read(path) == replacement


def test_an_engine_error_says_too_that_its_truth_was_not_recorded(tmp_path):
    path = str(tmp_path / 'i.db')
    make_db(path)
    store = inventory.InventoryStore(path)
    with pytest.raises(V3veeError) as err:
        with store.transaction():
            store.put(record('new'))
            os.unlink(path)
            raise V3veeError('launch did not take effect.')
    assert str(err.value).startswith('launch did not take effect. Inventory %s was deleted' % path)


def test_modes_too_wide_are_tightened_and_reported(tmp_path):
    directory = tmp_path / 'lib'
    path = str(directory / 'i.db')
    before = make_db(path)
    os.chmod(str(directory), 0o755)
    os.chmod(path, 0o644)
    check = inventory.InventoryStore(path, readonly=True).open()  # check mode: predicted, not done
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644 and len(check.warnings) == 2 and check.changed
    store = inventory.InventoryStore(path).open()
    assert stat.S_IMODE(os.stat(str(directory)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ['Tightened %s from mode 0755 to 0700' % directory, 'Tightened %s from mode 0644 to 0600' % path] == \
        [w.split(':')[0] for w in store.warnings]
    store.close()
    assert read(path) == before


def test_a_shared_directory_others_can_write_is_refused_not_chmodded(tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    (shared / 'someone-elses-file').write_text('x')
    os.chmod(str(shared), 0o1777)
    with pytest.raises(V3veeError, match='other users can write'):
        run_that_writes(str(shared / 'i.db'))
    assert stat.S_IMODE(os.stat(str(shared)).st_mode) == 0o1777
    assert sorted(os.listdir(str(shared))) == ['someone-elses-file']


@pytest.mark.skipif(os.geteuid() != 0, reason='chown needs root')
@pytest.mark.parametrize('what', ['directory', 'file'])
def test_a_directory_or_file_of_another_owner_is_refused(tmp_path, what):
    path = str(tmp_path / 'lib' / 'i.db')
    before = make_db(path)
    os.chown(os.path.dirname(path) if what == 'directory' else path, 65534, 65534)
    with pytest.raises(V3veeError, match='owned by uid 65534'):
        run_that_writes(path)
    with pytest.raises(V3veeError, match='owned by uid 65534'):
        inventory.InventoryStore(path, readonly=True).open()
    assert read(path) == before


@pytest.mark.parametrize('dangling', [False, True])
def test_a_symlink_in_place_of_the_database_is_not_followed(tmp_path, dangling):
    target = str(tmp_path / 'elsewhere.db')
    if not dangling:
        make_db(target)
        before = read(target)
    path = str(tmp_path / 'lib' / 'i.db')
    os.makedirs(os.path.dirname(path), 0o700)
    os.symlink(target, path)
    with pytest.raises(V3veeError, match='is a symlink; it is not followed'):
        run_that_writes(path)
    if dangling:
        assert not os.path.lexists(target)
    else:
        assert read(target) == before


def test_a_backup_name_taken_by_a_planted_symlink_is_not_followed(tmp_path, monkeypatch):
    path = str(tmp_path / 'i.db')
    make_db(path)
    upgrade(monkeypatch)
    victim = tmp_path / 'victim'
    victim.write_text('keep')
    monkeypatch.setattr(inventory.time, 'strftime', lambda fmt, t=None: '20260101T000000Z')
    planted = '%s.bak-v%d-20260101T000000Z' % (path, inventory.SCHEMA_VERSION - 1)
    os.symlink(str(victim), planted)
    store = inventory.InventoryStore(path).open()
    assert store.backup == planted + '.2' and os.path.islink(planted)
    assert victim.read_text() == 'keep'


def test_an_interrupted_first_run_leaves_an_empty_file_that_the_next_run_initialises(tmp_path):
    # os.open created it 0600, then the run was killed before SQLite wrote anything: no data to lose.
    path = str(tmp_path / 'i.db')
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    run_that_writes(path)
    assert [r['name'] for r in inventory.InventoryStore(path).all()] == ['new']


def test_the_store_copy_of_a_database_is_usable(tmp_path):
    # What an operator does with a backup: copy it back into place.
    path = str(tmp_path / 'i.db')
    make_db(path, ['web1'])
    shutil.copy(path, path + '.restored')
    assert [r['name'] for r in inventory.InventoryStore(path + '.restored').all()] == ['web1']


def test_a_run_whose_records_were_rolled_back_has_changed_nothing_but_the_modes(tmp_path):
    path = str(tmp_path / 'i.db')
    make_db(path)
    os.chmod(path, 0o644)
    store = inventory.InventoryStore(path)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put(record('new'))
            raise RuntimeError('boom')
    assert store.changed and store.repaired  # the mode was tightened: that stays
    store = inventory.InventoryStore(path)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put(record('new'))
            raise RuntimeError('boom')
    assert not store.changed


def test_a_symlink_planted_as_the_lock_file_is_not_followed(tmp_path):
    from ansible_collections.v3vee.palacios.plugins.module_utils.lock import HostLock
    victim = tmp_path / 'victim'
    os.symlink(str(victim), str(tmp_path / 'i.db.lock'))
    with pytest.raises(V3veeError, match='Cannot open the host lock .*i.db.lock: Too many levels of symbolic links'):
        with HostLock(str(tmp_path / 'i.db.lock'), timeout=1):
            pass
    assert not victim.exists()


@pytest.mark.parametrize('trace', ['i.db-journal', 'i.db.bak-v1-20260101T000000Z', 'configs/web1-0123456789abcdef.xml'])
def test_a_deleted_database_is_not_recreated_where_its_traces_are(tmp_path, trace):
    path = str(tmp_path / 'i.db')
    os.makedirs(str(tmp_path / 'configs'), 0o700)
    with open(str(tmp_path / trace), 'wb') as handle:
        handle.write(b'left over')
    shown = 'configs/' if '/' in trace else trace
    with pytest.raises(V3veeError, match=r'is missing, yet its traces are beside it \(%s\)' % re.escape(shown)):
        run_that_writes(path)
    assert not os.path.exists(path)
    assert inventory.InventoryStore(path, readonly=True).all() == []  # a reader sees an empty inventory


def test_a_new_inventory_is_created_where_there_is_none(tmp_path):
    os.makedirs(str(tmp_path / 'configs'), 0o700)  # empty: no guest config was ever kept
    run_that_writes(str(tmp_path / 'i.db'))
    assert [r['name'] for r in inventory.InventoryStore(str(tmp_path / 'i.db')).all()] == ['new']
