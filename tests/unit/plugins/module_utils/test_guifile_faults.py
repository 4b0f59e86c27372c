"""The GUI file export keeps its atomic write under storage faults and planted symlinks: the
file is either wholly replaced or left as it was, no temporary file stays behind, and nothing
is read or written through a symlink."""
import os
import stat

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import guifile
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
import smallfs

small_fs = smallfs.small_fs  # the fixture

OLD = b'web1,/home/u/web1.xml,,0,web1.img\n'
NEW = OLD * 20000  # 700 KB: more than the small file system holds


def existing(directory):
    path = os.path.join(directory, guifile.FILE_NAME)
    with open(path, 'wb') as handle:
        handle.write(OLD)
    return path


def test_a_read_only_directory_leaves_the_file_as_it_was(small_fs):
    path = existing(small_fs.path)
    small_fs.remount('ro')
    with pytest.raises(V3veeError, match='Read-only file system. It is left as it was'):
        guifile.write_atomic(path, b'new\n')
    assert guifile.read(path) == OLD and os.listdir(small_fs.path) == [guifile.FILE_NAME]


def test_a_full_disk_leaves_the_file_as_it_was_and_no_temporary_file(small_fs):
    path = existing(small_fs.path)
    with pytest.raises(V3veeError, match='No space left on device. It is left as it was'):
        guifile.write_atomic(path, NEW)
    assert guifile.read(path) == OLD and os.listdir(small_fs.path) == [guifile.FILE_NAME]


def test_a_symlink_at_the_target_is_neither_followed_nor_replaced(tmp_path):
    secret = tmp_path / 'secret'
    secret.write_bytes(b'root:x:0:0\n')
    os.chmod(str(secret), 0o600)
    path = str(tmp_path / guifile.FILE_NAME)
    os.symlink(str(secret), path)
    with pytest.raises(V3veeError, match='is a symlink; it is neither followed nor replaced'):
        guifile.read(path)  # would put the secret into the diff and the bad-line report
    with pytest.raises(V3veeError, match='is a symlink'):
        guifile.write_atomic(path, b'new\n')
    assert secret.read_bytes() == b'root:x:0:0\n' and stat.S_IMODE(os.stat(str(secret)).st_mode) == 0o600
    assert os.readlink(path) == str(secret) and sorted(os.listdir(str(tmp_path))) == ['secret', guifile.FILE_NAME]


def test_a_directory_at_the_target_is_refused(tmp_path):
    path = tmp_path / guifile.FILE_NAME
    path.mkdir()
    with pytest.raises(V3veeError, match='not a regular file'):
        guifile.write_atomic(str(path), b'new\n')


@pytest.mark.skipif(os.geteuid() != 0, reason='chown needs root')
def test_the_file_of_another_user_keeps_its_owner_through_its_own_descriptor(tmp_path):
    home = tmp_path / 'home'
    home.mkdir()
    os.chown(str(home), 65534, 65534)
    path = existing(str(home))
    os.chown(path, 65534, 65534)
    os.chmod(path, 0o640)
    guifile.write_atomic(path, b'new\n')
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)
    assert guifile.read(path) == b'new\n' and os.listdir(str(home)) == [guifile.FILE_NAME]
