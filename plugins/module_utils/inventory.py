# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's VM inventory: an SQLite database (the GUI's planned SQL backend).

One row per VM name (names are the inventory's key, as in the GUI; the kernel allows
duplicates, the inventory does not). The device slot links a row to the kernel.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import sqlite3
import time
from contextlib import contextmanager

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError

SCHEMA_VERSION = 2

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

    def open(self):
        if self.conn is not None:
            return self
        if self.readonly:
            if not os.path.exists(self.path):
                return self  # no database yet: an empty inventory
            uri = 'file:%s?mode=ro' % self.path
            self.conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
        else:
            directory = os.path.dirname(self.path) or '.'
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
                os.chmod(directory, 0o700)
            fresh = not os.path.exists(self.path)
            if fresh:
                # Create the file 0600 before SQLite opens it (no window with a wider mode).
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise V3veeError('Inventory %s is not a usable SQLite database: %s' % (self.path, exc))
        return self

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _version(self):
        tables = [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if 'meta' not in tables:
            if tables:
                raise V3veeError('Inventory %s has tables but no schema version; it was not written by '
                                 'v3vee.palacios. Refusing to touch it.' % self.path)
            return 0
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self):
        version = self._version()
        if version > SCHEMA_VERSION:
            raise V3veeError('Inventory %s has schema version %d; this collection knows up to %d. '
                             'Upgrade the v3vee.palacios collection.' % (self.path, version, SCHEMA_VERSION))
        if version == SCHEMA_VERSION or self.readonly:
            if self.readonly and version < SCHEMA_VERSION and version != 0:
                raise V3veeError('Inventory %s has an old schema (%d); run any v3vee.palacios module that '
                                 'writes to upgrade it.' % (self.path, version))
            return
        self.conn.execute('BEGIN IMMEDIATE')
        try:
            for index in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[index]:
                    self.conn.execute(statement)
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
            self.conn.execute('COMMIT')
        except Exception:
            self.conn.execute('ROLLBACK')
            raise

    @contextmanager
    def transaction(self):
        """One transaction for a whole module run. Read-only stores (check mode) only read."""
        self.open()
        if self.conn is None:
            yield self
            return
        self.conn.execute('BEGIN' if self.readonly else 'BEGIN IMMEDIATE')
        try:
            yield self
        except V3veeError:
            # The engine records what /proc shows before it raises (a VM it created must stay in
            # the inventory even if a later step failed): keep those writes.
            self.conn.execute('COMMIT')
            raise
        except BaseException:
            self.conn.execute('ROLLBACK')
            raise
        else:
            self.conn.execute('COMMIT')

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
