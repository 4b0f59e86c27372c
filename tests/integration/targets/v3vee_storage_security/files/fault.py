"""Puts one storage fault in place of the inventory database, or takes it away again:
fault.py DB ACTION [ARG]. The target checks the module's error and that the file is unchanged."""
import os
import shutil
import sqlite3
import sys

db, action = sys.argv[1], sys.argv[2]
saved = db + '.saved'
if action == 'save':
    shutil.copy2(db, saved)
elif action == 'restore':
    if os.path.lexists(db):
        os.unlink(db)
    shutil.copy2(saved, db)
elif action == 'damaged':
    with open(db, 'r+b') as handle:
        handle.write(b'\0' * 100)  # the SQLite header
elif action == 'foreign':
    os.unlink(db)
    conn = sqlite3.connect(db)
    conn.execute('CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT)')
    conn.commit()
    conn.close()
elif action == 'newer':
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
elif action == 'owner':
    os.chown(db, 65534, 65534)
elif action == 'symlink':
    os.unlink(db)
    os.symlink(saved, db)
elif action == 'fill':  # take every free byte of the file system db is on
    fd = os.open(os.path.join(os.path.dirname(db), 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b'\0' * 4096):
            pass
    except OSError:
        pass
    os.close(fd)
else:
    sys.exit('unknown action %s' % action)
