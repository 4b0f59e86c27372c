"""Where the v3 tools may come from: only absolute, configured directories (never the current
directory), and, for a module running as root, only files no other user can change."""
import os

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import kmsg
from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError, untrusted
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import Tools

root_only = pytest.mark.skipif(os.geteuid() != 0, reason='the refusal applies to modules running as root')


def tool(directory, name='v3_create', mode=0o755):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text('#!/bin/sh\n')
    os.chmod(str(path), mode)
    return str(path)


def recorder():
    ran = []

    def runner(argv, **kwargs):
        ran.append((argv, kwargs))
        return 0, '', ''
    return ran, runner


def test_the_current_directory_and_relative_path_entries_are_never_searched(tmp_path, monkeypatch):
    here = tmp_path / 'cwd'
    tool(here)
    tool(here / 'bin')
    monkeypatch.chdir(str(here))
    monkeypatch.setenv('PATH', ':.:bin:' + os.environ['PATH'])
    tools = Tools(Settings(), runner=None)
    assert all(os.path.isabs(d) for d in tools.search_dirs())
    found = tools.find('v3_create')
    assert found is None or not found.startswith(str(here))
    assert kmsg.find_command('v3_create', path=':.:bin') is None


def test_tools_inherit_only_absolute_path_entries(tmp_path, monkeypatch):
    monkeypatch.setenv('PATH', '.:bin::/usr/bin:/bin')
    path = tool(tmp_path / 'tools', 'v3_launch')
    ran, runner = recorder()
    Tools(Settings(tools_dir=str(tmp_path / 'tools')), runner).run('v3_launch', ['/dev/v3-vm0'], timeout=5)
    argv, kwargs = ran[0]
    assert argv == [path, '/dev/v3-vm0']
    assert kwargs['env_update']['PATH'] == '%s:/usr/bin:/bin' % (tmp_path / 'tools')


def test_a_relative_tools_dir_is_refused(tmp_path, monkeypatch):
    tool(tmp_path / 'bin')
    monkeypatch.chdir(str(tmp_path))
    with pytest.raises(V3veeError, match="tools_dir 'bin' is not an absolute path"):
        Tools(Settings(tools_dir='bin'), runner=None).which('v3_create')


@root_only
@pytest.mark.parametrize('fault,expected', [
    ('tool_world_writable', 'v3_create is writable by every user (mode 0777)'),
    ('tool_group_writable', 'v3_create is writable by group 100 (mode 0775)'),
    ('tool_owner', 'v3_create is owned by uid 65534'),
    ('dir_world_writable', 'tools is writable by every user (mode 0777)'),
    ('dir_owner', 'tools is owned by uid 65534'),
    ('parent_world_writable', 'opt is writable by every user (mode 0757)'),
    ('link_into_writable_dir', 'drop is writable by every user (mode 0777)'),
    ('link_owner', 'v3_create is owned by uid 65534'),
])
def test_as_root_a_tool_another_user_could_change_is_refused_before_it_runs(tmp_path, fault, expected):
    base = tmp_path / 'opt'
    tools_dir = base / 'tools'
    path = tool(tools_dir)
    if fault == 'tool_world_writable':
        os.chmod(path, 0o777)
    elif fault == 'tool_group_writable':
        os.chown(path, 0, 100)
        os.chmod(path, 0o775)
    elif fault == 'tool_owner':
        os.chown(path, 65534, 0)
    elif fault == 'dir_world_writable':
        os.chmod(str(tools_dir), 0o777)
    elif fault == 'dir_owner':
        os.chown(str(tools_dir), 65534, 0)
    elif fault == 'parent_world_writable':
        os.chmod(str(base), 0o757)
    elif fault in ('link_into_writable_dir', 'link_owner'):
        os.unlink(path)
        real = tool(tmp_path / 'drop', 'v3sim.py')
        os.symlink(os.path.relpath(real, str(tools_dir)), path)
        if fault == 'link_into_writable_dir':
            os.chmod(str(tmp_path / 'drop'), 0o777)
        else:
            os.lchown(path, 65534, 0)
    ran, runner = recorder()
    tools = Tools(Settings(tools_dir=str(tools_dir)), runner)
    with pytest.raises(V3veeError, match='Refusing to run %s as root' % path) as err:
        tools.run('v3_create', ['guest.img', 'web1'], timeout=5)
    assert expected in str(err.value)
    assert ran == [] and tools.commands == []


@root_only
def test_as_root_a_tool_of_root_only_passes_also_through_a_sticky_directory_and_symlinks(tmp_path):
    # tmp_path is under /tmp (mode 1777): sticky, so nobody can replace root's entries in it.
    real = tool(tmp_path / 'lib', 'v3sim.py')
    link = str(tmp_path / 'bin' / 'v3_create')
    os.mkdir(str(tmp_path / 'bin'))
    os.symlink('../lib/v3sim.py', link)
    assert untrusted(link) is None and untrusted(real) is None
    ran, runner = recorder()
    Tools(Settings(tools_dir=str(tmp_path / 'bin')), runner).run('v3_create', ['a.img', 'web1'], timeout=5)
    assert ran[0][0] == [link, 'a.img', 'web1']


@root_only
def test_as_root_a_kernel_log_command_another_user_could_change_is_passed_over(tmp_path):
    bad = tool(tmp_path / 'bad', 'dmesg')
    os.chmod(str(tmp_path / 'bad'), 0o777)
    good = tool(tmp_path / 'good', 'dmesg')
    assert untrusted(bad) is not None
    assert kmsg.find_command('dmesg', path='%s:%s' % (tmp_path / 'bad', tmp_path / 'good')) == good
