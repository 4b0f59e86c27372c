import os

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, find_executable
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import Tools


def _tool(directory, name, mode=0o755):
    path = directory / name
    path.write_text('#!/bin/sh\n')
    os.chmod(str(path), mode)
    return str(path)


def test_find_executable_takes_the_first_executable(tmp_path):
    first, second = tmp_path / 'a', tmp_path / 'b'
    first.mkdir()
    second.mkdir()
    _tool(first, 'v3_create', 0o644)  # not executable: skipped
    want = _tool(second, 'v3_create')
    assert find_executable('v3_create', [str(first), str(second)]) == want
    assert find_executable('v3_free', [str(first), str(second)]) is None


def test_tools_find_returns_none_where_which_raises(tmp_path):
    tools = Tools(Settings(tools_dir=str(tmp_path)), runner=None)
    assert tools.find('v3_launch') is None
    path = _tool(tmp_path, 'v3_launch')
    assert tools.find('v3_launch') == tools.which('v3_launch') == path
