"""The host settings file is parsed, never sourced: by the modules, by the boot scripts (which run
as root) and by the profile scripts. A value holding $(...) or backticks, or a line that is a
command, runs nothing anywhere."""
import os
import shlex
import subprocess

import jinja2
import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, read_host_conf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SHELLS = [s for s in ('/bin/sh', '/bin/dash', '/bin/bash') if os.path.exists(s)]


def hostile(tmp_path, **values):
    """A host.conf whose every trick would create a file in tmp_path/ran if it were ever run."""
    ran = tmp_path / 'ran'
    lines = ['%s=%s' % item for item in sorted(values.items())]
    lines += ['V3VEE_KERNEL_LOG=$(touch %s/dollar)' % ran,
              'V3VEE_BACKEND=`touch %s/backtick`' % ran,
              'touch %s/line' % ran,
              '`touch %s/line-backtick`' % ran,
              'V3VEE_SYS_DIR=x; touch %s/semicolon' % ran,
              'export V3VEE_DEV_DIR="$(touch %s/export)"' % ran]
    ran.mkdir()
    path = tmp_path / 'host.conf'
    path.write_text('\n'.join(lines) + '\n')
    return str(path), ran


def test_the_modules_take_values_as_text(tmp_path):
    conf, ran = hostile(tmp_path)
    values = read_host_conf(conf)
    settings = Settings.resolve({}, environ={'V3VEE_HOST_CONF': conf})
    assert settings.kernel_log == '$(touch %s/dollar)' % ran
    assert settings.backend == '`touch %s/backtick`' % ran
    assert values['V3VEE_DEV_DIR'] == '$(touch %s/export)' % ran
    assert os.listdir(str(ran)) == []


def render(template, **variables):
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters['quote'] = shlex.quote  # as Ansible's quote filter
    with open(os.path.join(REPO, template)) as handle:
        return env.from_string(handle.read()).render(ansible_managed='test', **variables)


def script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    os.chmod(str(path), 0o755)
    return str(path)


def fake_palacios(tmp_path):
    """A loaded Palacios as the boot scripts see it: v3-info, one node with its seed pool, /dev/v3vee."""
    proc = tmp_path / 'proc'
    proc.mkdir()
    (proc / 'v3-info').write_text('palacios run-time mem_block_size:\t134217728\nnumber of nodes:\t1\n')
    (proc / 'v3-mem0').write_text('Base Addr=0x1000000, size=4194304, 1 free\n')
    dev = tmp_path / 'dev'
    dev.mkdir()
    (dev / 'v3vee').write_text('')
    palacios = tmp_path / 'palacios'
    palacios.mkdir()
    (palacios / '.v3offlinedmem').write_text('stale\n')
    return str(proc), str(dev), str(palacios)


@pytest.mark.parametrize('shell', SHELLS)
def test_the_boot_script_takes_values_as_text(tmp_path, shell):
    proc, dev, palacios = fake_palacios(tmp_path)
    conf, ran = hostile(tmp_path, V3VEE_PROC_DIR=proc, V3VEE_DEV_DIR=dev, PALACIOS_DIR=palacios)
    boot = os.path.join(REPO, 'roles', 'palacios_module', 'files', 'v3vee-boot')
    proc_run = subprocess.run([shell, boot, conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, check=False)
    assert proc_run.returncode == 0, proc_run.stdout  # it read V3VEE_PROC_DIR and V3VEE_DEV_DIR
    assert os.listdir(str(ran)) == []


@pytest.mark.parametrize('shell', SHELLS)
def test_the_memory_boot_script_takes_values_as_text(tmp_path, shell):
    proc, _dev, palacios = fake_palacios(tmp_path)
    conf, ran = hostile(tmp_path, V3VEE_PROC_DIR=proc, PALACIOS_DIR=palacios,
                        V3VEE_TOOLS_DIR='$(touch %s/tools)' % (tmp_path / 'ran'))
    memory_conf = tmp_path / 'memory.conf'
    memory_conf.write_text('V3VEE_MEMORY_METHOD=$(touch %s/method)\nV3VEE_MEMORY_NODE_MB=""\n'
                           'touch %s/memory-line\n' % (ran, ran))
    path = script(tmp_path, 'v3vee-memory', render(
        'roles/palacios_memory/templates/v3vee-memory.sh.j2', palacios_memory_host_conf=conf,
        palacios_memory_conf_path=str(memory_conf)))
    proc_run = subprocess.run([shell, path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, env=dict(os.environ, V3VEE_HOST_CONF=conf), check=False)
    assert proc_run.returncode == 0, proc_run.stdout
    # It read PALACIOS_DIR from host.conf: a fresh module drops the records from before the boot.
    assert not os.path.exists(os.path.join(palacios, '.v3offlinedmem'))
    assert os.listdir(str(ran)) == []


@pytest.mark.parametrize('shell', SHELLS)
@pytest.mark.parametrize('template,variable', [('roles/simulator/templates/profile.sh.j2', 'simulator_host_conf_path'),
                                               ('roles/palacios_module/templates/profile.sh.j2',
                                                'palacios_module_host_conf_path')])
def test_the_login_profile_exports_values_as_text(tmp_path, shell, template, variable):
    conf, ran = hostile(tmp_path, V3VEE_TOOLS_DIR='/opt/v3 tools', PALACIOS_DIR='/opt/pal  # comment')
    profile = script(tmp_path, 'profile.sh', render(template, simulator_root='/opt/sim', **{variable: conf}))
    out = subprocess.run([shell, '-c', '. "$1"; env', 'sh', profile], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout.splitlines()
    assert 'V3VEE_TOOLS_DIR=/opt/v3 tools' in out and 'PALACIOS_DIR=/opt/pal' in out
    assert 'V3VEE_KERNEL_LOG=$(touch %s/dollar)' % ran in out
    assert os.listdir(str(ran)) == []
