# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's VM inventory: an SQLite database (the GUI's planned SQL backend).

One row per VM name (names are the inventory's key, as in the GUI; the kernel allows
duplicates, the inventory does not). The device slot links a row to the kernel.

The database is the only record of what a host should run, so it is never overwritten,
truncated or re-created behind the user's back: a file that is not ours (corrupt, another
application's, a newer schema, a symlink, another owner's) is refused before any tool runs;
a run whose file was deleted or replaced under it records nothing; a schema upgrade first
copies the database to `<path>.bak-v<old>-<time>`. Modes wider than 0700/0600 are tightened
(and reported): the file holds every guest's paths and options.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import sqlite3
import stat
import time
from contextlib import contextmanager

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError

SCHEMA_VERSION = 2
DIR_MODE = 0o700
FILE_MODE = 0o600

# Every migration takes the database from version i to i + 1.
MIGRATIONS = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE vms ("
        " name TEXT PRIMARY KEY,"
        " image TEXT,"
        " config TEXT,"
        " config_options TEXT NOT NULL DEFAULT '{}',"
        " slot INTEGER,"
        " device TEXT,"
        " observed_state TEXT NOT NULL DEFAULT 'inactive',"
        " desired_state TEXT NOT NULL DEFAULT 'inactive',"
        " created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL,"
        " CHECK (image IS NOT NULL OR config IS NOT NULL))",
    ),
    # 2: checkpoints (v3vee_checkpoint). One per directory; `definition` is the VM's definition at
    # save (JSON, with the config's sha256); `recover` asks v3vee_inventory recover to restore the
    # VM from its latest checkpoint once.
    (
        "CREATE TABLE checkpoints ("
        " path TEXT PRIMARY KEY,"
        " vm TEXT NOT NULL,"
        " store TEXT NOT NULL,"
        " url TEXT NOT NULL,"
        " saved_at TEXT NOT NULL,"
        " vm_state TEXT NOT NULL,"
        " definition TEXT NOT NULL,"
        " memory_bytes INTEGER NOT NULL,"
        " cores INTEGER NOT NULL,"
        " recover INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX checkpoints_vm ON checkpoints (vm, saved_at)",
    ),
)
CHECKPOINT_FIELDS = ('path', 'vm', 'store', 'url', 'saved_at', 'vm_state', 'definition', 'memory_bytes', 'cores',
                     'recover')

FIELDS = ('name', 'image', 'config', 'config_options', 'slot', 'device', 'observed_state',
          'desired_state', 'created_at', 'updated_at')
# What makes two records "the same" for idempotence: everything but the timestamps.
CONTENT_FIELDS = FIELDS[:-2]


def now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def content(record):
    if record is None:
        return None
    return dict((key, record.get(key)) for key in CONTENT_FIELDS)


def new_record(name, definition, slot=None, device=None, observed_state='inactive', desired_state='inactive',
               previous=None):
    """A record to store; keeps created_at (and updated_at when nothing changed) from previous."""
    record = {
        'name': name,
        'image': definition.get('image'),
        'config': definition.get('config'),
        'config_options': dict(definition.get('config_options') or {}),
        'slot': slot,
        'device': device,
        'observed_state': observed_state,
        'desired_state': desired_state,
    }
    stamp = now()
    record['created_at'] = previous['created_at'] if previous else stamp
    if previous and content(previous) == content(record):
        record['updated_at'] = previous['updated_at']
    else:
        record['updated_at'] = stamp
    return record


class InventoryStore(object):
    """SQLite inventory at `path`: directory 0700, file 0600, schema versioned.

    Use `with store.transaction():` around a whole module run: everything the run records is
    committed together, or nothing is.
    """

    def __init__(self, path, readonly=False):
        self.path = path
        self.readonly = readonly
        self.conn = None
        # Whether a put/delete changed a record: a failing module run reports changed from it.
        self.changed = False
        # What the user should know (modes tightened, a backup made); the module reports them.
        self.warnings = []
        self.backup = None
        # Modes tightened (in check mode: to be) or the schema upgraded: changes that stay when the
        # run's records are rolled back.
        self.repaired = False
        self._identity = None
        self._mode = FILE_MODE

    def _refuse(self, problem):
        return V3veeError('Inventory %s %s Nothing was read from or written to it.' % (self.path, problem))

    def _check_directory(self):
        """Check (or create) the inventory's directory. Returns whether it exists."""
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            info = os.stat(directory)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise self._refuse('cannot be reached: %s.' % (exc.strerror or exc))
            if self.readonly:
                return False
            try:
                os.makedirs(directory, DIR_MODE)
                os.chmod(directory, DIR_MODE)
            except OSError as exc:
                raise self._refuse('cannot be created: cannot create the directory %s: %s.'
                                   % (directory, exc.strerror or exc))
            return True
        if not stat.S_ISDIR(info.st_mode):
            raise self._refuse('cannot be created: %s is not a directory.' % directory)
        if info.st_uid != os.geteuid():
            raise self._refuse('is in %s, which is owned by uid %d, not by uid %d that the modules run as: another '
                               'user could replace the inventory. chown the directory, or set inventory_path to a '
                               'directory of uid %d.' % (directory, info.st_uid, os.geteuid(), os.geteuid()))
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077 and self._only_ours(directory):
            self._tighten(directory, mode, DIR_MODE, lambda: os.chmod(directory, DIR_MODE))
        elif mode & 0o022:
            raise self._refuse('is in %s (mode %04o), which other users can write and which holds other files: '
                               'they could replace the inventory. Give the inventory a directory of its own '
                               '(inventory_path), or remove group/other write from %s.'
                               % (directory, mode, directory))
        return True

    def _only_ours(self, directory):
        """Whether the directory holds nothing but the inventory and what lives beside it (lock,
        journal, backups, configs): only then is tightening its mode safe for everyone else."""
        base = os.path.basename(self.path)
        return all(name.startswith(base) or name == 'configs' for name in os.listdir(directory))

    def _tighten(self, path, mode, wanted, chmod):
        if self.readonly:
            # Check mode: predicted, so it reports changed as the real run will.
            self.changed = self.repaired = True
            self.warnings.append('%s has mode %04o; a run that writes the inventory tightens it to %04o.'
                                 % (path, mode, wanted))
            return
        try:
            chmod()
        except OSError as exc:
            raise self._refuse('cannot be made private: chmod %04o %s failed: %s.' % (wanted, path, exc.strerror or exc))
        self.changed = self.repaired = True
        self.warnings.append('Tightened %s from mode %04o to %04o: the inventory is private to uid %d.'
                             % (path, mode, wanted, os.geteuid()))

    def _check_file(self):
        """Check the database file without following a symlink. Returns whether it exists."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            if exc.errno == errno.ELOOP:
                raise self._refuse('is a symlink; it is not followed (anyone who can change the link could point '
                                   'the inventory elsewhere). Replace the link by the file, or set inventory_path '
                                   'to the real path.')
            raise self._refuse('cannot be opened: %s.' % (exc.strerror or exc))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise self._refuse('is not a regular file.')
            if info.st_uid != os.geteuid():
                raise self._refuse('is owned by uid %d, not by uid %d that the modules run as: its records cannot be '
                                   'trusted. chown it if it is the inventory of this host.'
                                   % (info.st_uid, os.geteuid()))
            self._identity = (info.st_dev, info.st_ino)
            self._mode = stat.S_IMODE(info.st_mode)
        finally:
            os.close(fd)
        return True

    def _tighten_file(self):
        """0600 for a database known to be ours (a file that is not ours is not touched at all)."""
        if not self._mode & ~FILE_MODE:
            return

        def chmod():
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                info = os.fstat(fd)
                if (info.st_dev, info.st_ino) != self._identity:
                    raise OSError(errno.ESTALE, 'it was replaced')
                os.fchmod(fd, FILE_MODE)
            finally:
                os.close(fd)
        self._tighten(self.path, self._mode, FILE_MODE, chmod)

    def _traces(self):
        """What shows that this inventory existed: its journal, its backups, guest configs kept for it."""
        directory = os.path.dirname(os.path.abspath(self.path))
        base = os.path.basename(self.path)
        found = sorted(name for name in os.listdir(directory)
                       if name in (base + '-journal', base + '-wal') or name.startswith(base + '.bak-'))
        configs = os.path.join(directory, 'configs')
        if os.path.isdir(configs) and not os.path.islink(configs) and os.listdir(configs):
            found.append('configs/')
        return found

    def _create(self):
        """A new, empty database file, 0600 from the start; never through a planted symlink or over a
        file, and not where traces show a database that was deleted (a journal left there would even be
        played into the new file)."""
        traces = self._traces()
        if traces:
            raise self._refuse('is missing, yet its traces are beside it (%s): it was deleted or moved, and a new, '
                               'empty one would lose every record. Put it back (a .bak- file is a copy of it), or '
                               'remove those traces to start a new, empty inventory.' % ', '.join(traces))
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        except OSError as exc:
            raise self._refuse('cannot be created: %s.' % (exc.strerror or exc))
        info = os.fstat(fd)
        os.close(fd)
        self._identity = (info.st_dev, info.st_ino)

    def _moved(self):
        """Why the path no longer names the file this store opened, or None."""
        try:
            info = os.lstat(self.path)
        except OSError:
            return 'was deleted'
        if (info.st_dev, info.st_ino) != self._identity:
            return 'was replaced by another file'
        return None

    def open(self):
        if self.conn is not None:
            return self
        if not self._check_directory() or not self._check_file():
            if self.readonly:
                return self  # no database yet: an empty inventory
            self._create()
        try:
            if self.readonly:
                self._roll_back_killed_commit()
                self.conn = sqlite3.connect('file:%s?mode=ro' % self.path, uri=True, timeout=30, isolation_level=None)
            else:
                self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            moved = self._moved()
            if moved:
                raise self._refuse('%s while it was opened.' % moved)
            self.conn.row_factory = sqlite3.Row
            # Corruption found now fails the run before any tool runs, not at the commit after them.
            problems = [row[0] for row in self.conn.execute('PRAGMA quick_check')]
            if problems != ['ok']:
                raise self._refuse('is damaged (SQLite quick_check: %s). Restore it from a backup.'
                                   % '; '.join(problems[:3]))
            self._migrate()
            self._tighten_file()
        except sqlite3.DatabaseError as exc:
            self.close()
            if self.readonly and os.path.exists(self.path + '-journal'):
                raise V3veeError('Inventory %s has the unfinished commit of a run that was killed (%s-journal), which '
                                 'only a user who may write the database can roll back: %s. Any v3vee.palacios run '
                                 'that writes the inventory (not in check mode) rolls it back.'
                                 % (self.path, self.path, exc))
            raise self._refuse('is not a usable SQLite database: %s.' % exc)
        except V3veeError:
            self.close()
            raise
        return self

    def _roll_back_killed_commit(self):
        """A run killed while its COMMIT wrote the database leaves a hot journal that only a
        connection allowed to write can roll back (SQLite does on its first read); until then every
        read-only open fails. Rolling it back restores the last committed inventory, changing no record."""
        directory = os.path.dirname(self.path) or '.'
        if not os.path.exists(self.path + '-journal') or not os.access(self.path, os.W_OK) \
                or not os.access(directory, os.W_OK):
            return
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute('SELECT count(*) FROM sqlite_master').fetchone()
        except sqlite3.DatabaseError:
            pass  # the read-only open that follows reports what is wrong with the file
        finally:
            conn.close()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _version(self):
        tables = set(r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
        if not tables:
            return 0
        row = None
        if {'meta', 'vms'} <= tables:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            raise self._refuse('has tables (%s) but no v3vee.palacios schema version; it was not written by '
                               'v3vee.palacios. Refusing to touch it.' % ', '.join(sorted(tables)))
        return int(row[0])

    def _migrate(self):
        version = self._version()
        if version > SCHEMA_VERSION:
            raise self._refuse('has schema version %d; this collection knows up to %d. '
                               'Upgrade the v3vee.palacios collection.' % (version, SCHEMA_VERSION))
        if version == SCHEMA_VERSION or self.readonly:
            if self.readonly and version < SCHEMA_VERSION and version != 0:
                raise V3veeError('Inventory %s has an old schema (%d); run any v3vee.palacios module that '
                                 'writes to upgrade it.' % (self.path, version))
            return
        self.conn.execute('BEGIN IMMEDIATE')
        try:
            if version:
                self._backup(version)
            for index in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[index]:
                    self.conn.execute(statement)
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
            self._commit()
        except BaseException:
            self._rollback()
            raise
        if self.backup:
            self.changed = self.repaired = True
            self.warnings.append('Upgraded the inventory schema of %s from version %d to %d; the database as it was '
                                 'is kept in %s.' % (self.path, version, SCHEMA_VERSION, self.backup))

    def _backup(self, version):
        """Copy the database beside itself before a migration changes it. Called under BEGIN
        IMMEDIATE: no other writer can be half-way, so the file is one consistent database."""
        stem = '%s.bak-v%d-%s' % (self.path, version, time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
        path, number = stem, 1
        while True:
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
                break
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise self._refuse('was not upgraded: cannot create the backup %s: %s.' % (path, exc.strerror))
                number += 1
                path = '%s.%d' % (stem, number)
        try:
            source = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                while True:
                    chunk = os.read(source, 1 << 20)
                    if not chunk:
                        break
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view):]
                os.fsync(out)
            finally:
                os.close(source)
        except OSError as exc:
            os.close(out)
            os.unlink(path)
            raise self._refuse('was not upgraded: the backup %s could not be written: %s.' % (path, exc.strerror))
        os.close(out)
        self.backup = path

    def _rollback(self):
        self.changed = self.repaired  # the run's records are gone
        try:
            self.conn.execute('ROLLBACK')
        except sqlite3.Error:
            pass  # no transaction left open (SQLite rolled back by itself)

    def _commit(self):
        """COMMIT, but only into the file this store opened: a database deleted or replaced during
        the run is left as it is now, and the run's records are not written anywhere."""
        moved = self._moved()
        if moved:
            self._rollback()
            raise V3veeError('Inventory %s %s during this run; nothing of this run was recorded (the file there now '
                             'is left untouched). Check what else manages that path, then run again.'
                             % (self.path, moved))
        try:
            self.conn.execute('COMMIT')
        except sqlite3.Error as exc:
            self._rollback()
            raise V3veeError('Cannot record this run in the inventory %s: %s. Nothing of this run was recorded; the '
                             'inventory is as it was before.' % (self.path, exc))

    @contextmanager
    def transaction(self):
        """One transaction for a whole module run. Read-only stores (check mode) only read."""
        self.open()
        if self.conn is None:
            yield self
            return
        try:
            self.conn.execute('BEGIN' if self.readonly else 'BEGIN IMMEDIATE')
        except sqlite3.Error as exc:
            raise V3veeError('Cannot start a transaction on the inventory %s: %s.' % (self.path, exc))
        try:
            yield self
        except V3veeError as err:
            # The engine records what /proc shows before it raises (a VM it created must stay in
            # the inventory even if a later step failed): keep those writes.
            try:
                self._end()
            except V3veeError as lost:
                err.msg += ' ' + lost.msg
            raise
        except sqlite3.Error as exc:
            self._rollback()
            raise V3veeError('Inventory %s failed during this run: %s. Nothing of this run was recorded.'
                             % (self.path, exc))
        except BaseException:
            self._rollback()
            raise
        else:
            self._end()

    def _end(self):
        if self.readonly:
            self._rollback()  # a reader has nothing to keep
        else:
            self._commit()

    @staticmethod
    def _row(row):
        record = dict((key, row[key]) for key in FIELDS)
        record['config_options'] = json.loads(record['config_options'] or '{}')
        return record

    def get(self, name):
        self.open()
        if self.conn is None:
            return None
        row = self.conn.execute('SELECT * FROM vms WHERE name = ?', (name,)).fetchone()
        return self._row(row) if row else None

    def all(self):
        self.open()
        if self.conn is None:
            return []
        return [self._row(row) for row in self.conn.execute('SELECT * FROM vms ORDER BY name')]

    def put(self, record):
        if content(self.get(record['name'])) != content(record):
            self.changed = True
        values = dict(record)
        values['config_options'] = json.dumps(values.get('config_options') or {}, sort_keys=True)
        self.conn.execute(
            'INSERT OR REPLACE INTO vms (%s) VALUES (%s)' % (', '.join(FIELDS), ', '.join('?' * len(FIELDS))),
            tuple(values.get(key) for key in FIELDS))

    def delete(self, name):
        if self.get(name) is not None:
            self.changed = True
        self.conn.execute('DELETE FROM vms WHERE name = ?', (name,))

    # -- checkpoints (schema 2) ---------------------------------------------------------------
    @staticmethod
    def _checkpoint(row):
        record = dict((key, row[key]) for key in CHECKPOINT_FIELDS)
        record['definition'] = json.loads(record['definition'])
        record['recover'] = bool(record['recover'])
        return record

    def checkpoints(self, vm=None):
        """Checkpoint records, oldest first (of VM `vm`, or all)."""
        self.open()
        if self.conn is None:
            return []
        query, args = 'SELECT * FROM checkpoints', ()
        if vm is not None:
            query, args = query + ' WHERE vm = ?', (vm,)
        return [self._checkpoint(row) for row in self.conn.execute(query + ' ORDER BY saved_at, path', args)]

    def checkpoint(self, path):
        self.open()
        if self.conn is None:
            return None
        row = self.conn.execute('SELECT * FROM checkpoints WHERE path = ?', (path,)).fetchone()
        return self._checkpoint(row) if row else None

    def put_checkpoint(self, record):
        if self.checkpoint(record['path']) != record:
            self.changed = True
        values = dict(record, definition=json.dumps(record['definition'], sort_keys=True),
                      recover=1 if record['recover'] else 0)
        self.conn.execute('INSERT OR REPLACE INTO checkpoints (%s) VALUES (%s)' % (
            ', '.join(CHECKPOINT_FIELDS), ', '.join('?' * len(CHECKPOINT_FIELDS))),
            tuple(values[key] for key in CHECKPOINT_FIELDS))

    def delete_checkpoint(self, path):
        if self.checkpoint(path) is not None:
            self.changed = True
        self.conn.execute('DELETE FROM checkpoints WHERE path = ?', (path,))
