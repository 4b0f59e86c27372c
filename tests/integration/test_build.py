"""The collection tarball `ansible-galaxy collection build` makes holds the project's files
only: never a second copy of the collection that tools leave in the tree (ansible-lint's
.ansible/), nor virtualenvs, caches or dev tooling (galaxy.yml build_ignore)."""
import os
import shutil
import subprocess
import tarfile

from conftest import ROOT, ansible_bin, ansible_env


def project_files():
    out = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT,
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    return [path for path in out.split('\0') if path and os.path.isfile(os.path.join(ROOT, path))]


def test_tarball_has_no_nested_collection_copy_nor_tool_leftovers(tmp_path):
    src = tmp_path / 'src'
    files = project_files()
    for path in files:
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, path), src / path)
    # What ansible-lint, pytest and dev.sh leave behind in a working tree.
    leftovers = ['.ansible/collections/ansible_collections/v3vee/palacios/plugins/modules/v3vee_vm.py',
                 '.ansible/roles/v3vee.palacios.simulator/tasks/main.yml',
                 '.tmp/collections/ansible_collections/v3vee/x.py', '.venv/bin/python3',
                 '.venv-sanity/bin/python3', '.pytest_cache/README.md', '.dev-installed-packages',
                 'changelogs/.plugin-cache.yaml', 'tests/output/junit.xml']
    for path in leftovers:
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text('#!/usr/bin/env python3\n')
    dist = tmp_path / 'dist'
    subprocess.run([ansible_bin('ansible-galaxy'), 'collection', 'build', '--output-path', str(dist), str(src)],
                   env=ansible_env(), check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    (tarball,) = dist.iterdir()
    with tarfile.open(tarball) as archive:
        members = [m.name for m in archive.getmembers() if m.isfile()]

    nested = [m for m in members if 'ansible_collections/' in m or m.split('/')[0] == '.ansible']
    assert nested == []
    # Every shipped file is a project file (plus the two manifests the build writes) ...
    assert sorted(set(members) - set(files)) == ['FILES.json', 'MANIFEST.json']
    # ... and the collection's content and its license are all there.
    assert 'LICENSE' in members and 'CHANGELOG.rst' in members and 'meta/runtime.yml' in members
    dev_tooling = ('dev.sh', 'tools', '.ci', '.gitignore', '.ansible-lint')
    shipped_dev_tooling = [m for m in members if m.split('/')[0] in dev_tooling]
    assert shipped_dev_tooling == []
    assert any(m.startswith('plugins/modules/') for m in members)
