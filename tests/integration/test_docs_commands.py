"""Every command README.md and docs/*.md show (fenced sh/bash/shell blocks; `$ ` lines of
console blocks) runs exactly as written, in the order a reader meets them, on a demo host:
a fresh copy of the repository, a fresh HOME, and a one-host fleet (tests/fleet/fleet.py)
whose private mount namespace gives it its own /etc/v3vee, /var/lib/v3vee, /opt/v3vee-sim,
/etc/profile.d and /srv/v3vee-demo, so the demo's real paths are used without touching this
machine's. Then `./dev.sh clean` on that host removes what the demo installed, and nothing
the user had."""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import ROOT

# Commands the docs show that this test cannot run, with the reason. Keep it tiny.
NOT_RUN = {
    './dev.sh test': 'the whole test suite, which runs this test (recursion; about half an hour)',
    'python benchmarks/startup_bench.py --runs 5 --vms 32 --fleet 8':
        'a benchmark, not a test: about a quarter of an hour of CPU (5 interleaved rounds, 32 VMs, an '
        '8-host fleet); tests/integration/test_benchmarks.py runs the same script at its smallest scale, '
        'fleet included',
}
FLEET = os.path.join(ROOT, 'tests', 'fleet', 'fleet.py')
HOST = 'v3h1'
FENCE = re.compile(r'^```[ \t]*([\w-]*)([^\n]*)\n(.*?)^```[ \t]*$', re.M | re.S)
# A block whose info string says `run-by=<test file>` needs more than the one demo host (two
# hosts to move a VM between): that test runs each of its commands as written, and says so.
RUN_BY = re.compile(r'\brun-by=(\S+)')


def documents():
    return [os.path.join(ROOT, 'README.md')] + sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md')))


def shell_commands(markdown, run_by=None):
    """The commands of a document's shell blocks, continuation lines joined, in order: those of
    blocks marked `run-by=<run_by>`, or (run_by None) those of unmarked blocks."""
    commands = []
    for language, info, body in FENCE.findall(markdown):
        marked = RUN_BY.search(info)
        if (marked.group(1) if marked else None) != run_by:
            continue
        if language in ('sh', 'bash', 'shell'):
            lines = body.splitlines()
        elif language == 'console':
            lines = [line[2:] for line in body.splitlines() if line.startswith('$ ')]
        else:
            continue
        logical = ''
        for line in lines:
            logical += line
            if logical.endswith('\\'):
                logical = logical[:-1]  # the shell drops backslash-newline
                continue
            if logical.strip() and not logical.strip().startswith('#'):
                commands.append(logical.strip())
            logical = ''
    return commands


def bare(command):
    """The command without its trailing comment, words as the shell splits them."""
    return ' '.join(shlex.split(command, comments=True))


def documented_commands():
    commands = []
    for path in documents():
        with open(path) as handle:
            commands += shell_commands(handle.read())
    return commands


def test_shell_blocks_are_found_with_continuations_and_console_prompts():
    markdown = ('```sh\n./a.sh   # comment\n# only a comment\nb --x \\\n  --y\n```\n'
                '```yaml\nc: 1\n```\n```console\n$ d\noutput\n```\n```\nfile listing\n```\n'
                '```sh run-by=tests/t.py\ne\n```\n')
    assert shell_commands(markdown) == ['./a.sh   # comment', 'b --x   --y', 'd']
    assert shell_commands(markdown, run_by='tests/t.py') == ['e']


def test_blocks_run_by_another_test_name_a_test_that_exists():
    for path in documents():
        with open(path) as handle:
            for _language, info, _body in FENCE.findall(handle.read()):
                marked = RUN_BY.search(info)
                assert not marked or os.path.isfile(os.path.join(ROOT, marked.group(1))), (path, info)


def user_env(home):
    """A user's shell: no virtualenv, no Ansible or collection settings of the test run."""
    env = dict((key, value) for key, value in os.environ.items()
               if not key.startswith(('ANSIBLE_', 'V3VEE_', 'MOLECULE_', 'PYTEST_')))
    for key in ('VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME'):
        env.pop(key, None)
    env['PATH'] = os.pathsep.join(
        entry for entry in os.environ.get('PATH', '').split(os.pathsep)
        if entry and not entry.startswith(ROOT) and not os.path.isfile(os.path.join(entry, 'activate')))
    env.update(HOME=home, LANG='C.UTF-8', LC_ALL='C.UTF-8', TERM='dumb')
    return env


def copy_repository(clone):
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT,
                           stdout=subprocess.PIPE, check=True).stdout.decode().split('\0')
    for path in files:
        if path and os.path.isfile(os.path.join(ROOT, path)):
            os.makedirs(os.path.join(clone, os.path.dirname(path)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, path), os.path.join(clone, path))


def in_host(workdir, env, argv, timeout):
    return subprocess.run(['python3', FLEET, 'exec', '--workdir', workdir, '--host', HOST, '--'] + argv,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)


def session_script(clone, commands):
    lines = ['set -e', 'cd %s' % shlex.quote(clone)]
    for number, command in enumerate(commands, 1):
        lines.append("printf '\\n### command %d of %d: %%s\\n' %s" % (number, len(commands), shlex.quote(command)))
        lines.append(command)
    lines.append("printf '\\n### every command passed\\n'")
    return '\n'.join(lines) + '\n'


PROBE = '''
import json, os, sys
print(json.dumps({p: sorted(os.listdir(p)) if os.path.isdir(p) else os.path.exists(p) for p in sys.argv[1:]}))
'''


@pytest.mark.skipif(os.geteuid() != 0, reason='the demo host is a fleet host: network and mount namespaces need root')
def test_readme_and_docs_commands_run_as_written_on_a_demo_host_then_clean_removes_the_demo(tmp_path):
    commands = documented_commands()
    for command in NOT_RUN:
        assert command in map(bare, commands), 'NOT_RUN lists %r, which no document shows any more' % command
    to_run = [command for command in commands if bare(command) not in NOT_RUN]
    assert bare(to_run[0]) == './dev.sh demo'  # the demo makes the demo host: it comes first

    clone, home, workdir = str(tmp_path / 'clone'), str(tmp_path / 'home'), str(tmp_path / 'fleet')
    os.makedirs(home)
    copy_repository(clone)
    env = user_env(home)
    # The fleet host has no route out: packages and the virtualenv come first, as the user's
    # first `./dev.sh` would install them.
    setup = subprocess.run(['./dev.sh', 'setup'], cwd=clone, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=900, check=False)
    assert setup.returncode == 0, setup.stdout[-4000:]
    assert not os.path.exists(os.path.join(clone, '.dev-installed-packages')), \
        'dev.sh installed Debian packages for this test: ./dev.sh clean would remove them from this machine'

    fleet_env = dict(env, V3VEE_FLEET_NAME=os.environ.get('V3VEE_DOCS_FLEET_NAME', 'v3docs'),
                     V3VEE_FLEET_NETWORK=os.environ.get('V3VEE_DOCS_FLEET_NETWORK', '198.18.235.0/24'))
    up = subprocess.run(['python3', FLEET, 'up', '--workdir', workdir, '--hosts', '1'], env=fleet_env,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300,
                        check=False)
    assert up.returncode == 0, up.stdout[-4000:]
    try:
        # What the user had before the demo: clean must leave it.
        mine = ['/var/lib/v3vee/my-notes.txt', os.path.join(home, '.ansible', 'my-settings.cfg')]
        prepare = in_host(workdir, env, ['sh', '-c', 'mkdir -p "$(dirname "$2")" && touch "$1" "$2"', 'sh'] + mine,
                          60)
        assert prepare.returncode == 0, prepare.stdout

        script = os.path.join(str(tmp_path), 'session.sh')
        with open(script, 'w') as handle:
            handle.write(session_script(clone, to_run))
        session = in_host(workdir, env, ['bash', '--noprofile', '--norc', script], 1800)
        with open(os.path.join(str(tmp_path), 'session.log'), 'w') as handle:
            handle.write(session.stdout)
        failed_at = re.findall(r'^### (command .*)$', session.stdout, re.M)
        assert session.returncode == 0, 'failed at %s:\n%s' % (failed_at[-1:], session.stdout[-6000:])
        assert session.stdout.rstrip().endswith('### every command passed')

        # The demo's closing lines tell what to try next: each is one of the commands run above.
        next_lines = session.stdout.split('== what to try next', 1)[1].split('\n###', 1)[0].splitlines()[1:]
        suggested = [line.strip() for line in next_lines if line.startswith('  ')]
        assert suggested and [command for command in suggested if command not in map(bare, to_run)] == []

        demo_paths = ['/opt/v3vee-sim', '/srv/v3vee-demo', '/etc/v3vee/host.conf', '/etc/profile.d/v3vee.sh',
                      '/var/lib/v3vee/inventory.db',
                      os.path.join(home, '.ansible', 'collections', 'ansible_collections', 'v3vee', 'palacios'),
                      os.path.join(clone, '.venv'), os.path.join(clone, '.tmp')]
        before = json.loads(in_host(workdir, env, ['python3', '-c', PROBE] + demo_paths + mine, 60).stdout)
        assert all(before.values()), before

        clean = in_host(workdir, env, [os.path.join(clone, 'dev.sh'), 'clean'], 300)
        assert clean.returncode == 0, clean.stdout[-4000:]
        after = json.loads(in_host(workdir, env, ['python3', '-c', PROBE] + demo_paths + mine, 60).stdout)
        # The fleet's per-host directories are mount points: they stay, empty.
        assert after == dict([(path, False) for path in demo_paths]
                             + [('/opt/v3vee-sim', []), ('/srv/v3vee-demo', [])]
                             + [(path, True) for path in mine]), after
    finally:
        down = subprocess.run(['python3', FLEET, 'down', '--workdir', workdir], env=fleet_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=300, check=False)
        assert down.returncode == 0, down.stdout[-4000:]
