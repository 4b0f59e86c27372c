"""Run integration targets (tests/integration/targets/<name>/tasks/main.yml) with the real
ansible-playbook against a simulated Palacios host installed by the simulator role into a
temporary directory. Nothing outside that directory is touched: the modules find the simulated
host through V3VEE_HOST_CONF, which points at the host.conf the role writes there."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = os.path.join(ROOT, 'tests', 'integration', 'targets')
COLLECTIONS = os.path.join(ROOT, '.tmp', 'collections')

PLAY = textwrap.dedent('''\
    - name: Integration target {target}
      hosts: localhost
      connection: local
      gather_facts: false
      vars:
        ansible_python_interpreter: "{python}"
        work_dir: "{work}"
        sim_root: "{work}/sim"
        sim_bin: "{work}/sim/bin"
        sim_proc: "{work}/sim/proc/v3vee"
        sim_guests: "{work}/sim/guests"
        host_conf: "{work}/host.conf"
        inventory_path: "{work}/lib/inventory.db"
      environment:
        V3VEE_HOST_CONF: "{work}/host.conf"
      tasks:
        - name: Simulated Palacios host
          ansible.builtin.include_role:
            name: v3vee.palacios.simulator
          vars:
            simulator_root: "{{{{ sim_root }}}}"
            simulator_host_conf_path: "{{{{ host_conf }}}}"
            simulator_inventory_path: "{{{{ inventory_path }}}}"
            simulator_profile: false
            simulator_reserve_mb: {reserve_mb}
        - name: Target
          ansible.builtin.include_role:
            name: {target}
    ''')


def ansible_env():
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS,
        'ANSIBLE_ROLES_PATH': TARGETS,
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_RETRY_FILES_ENABLED': 'false',
        'ANSIBLE_LOCALHOST_WARNING': 'false',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'false',
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
    })
    link = os.path.join(COLLECTIONS, 'ansible_collections', 'v3vee', 'palacios')
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    return env


def ansible_bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def run_target(target, work_dir, reserve_mb=1024):
    playbook = os.path.join(str(work_dir), 'play.yml')
    with open(playbook, 'w') as handle:
        handle.write(PLAY.format(target=target, work=work_dir, python=sys.executable, reserve_mb=reserve_mb))
    proc = subprocess.run([ansible_bin('ansible-playbook'), '-i', 'localhost,', playbook],
                          env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, cwd=str(work_dir), check=False)
    return proc


@pytest.fixture
def target_runner(tmp_path):
    def run(target, **kwargs):
        proc = run_target(target, tmp_path, **kwargs)
        if proc.returncode != 0:
            pytest.fail('ansible-playbook failed for target %s (rc=%s):\n%s'
                        % (target, proc.returncode, proc.stdout[-12000:]), pytrace=False)
        return proc
    return run


def pytest_terminal_summary(terminalreporter):
    """The figures of the kill tests (test_kill_points.py), also from xdist workers."""
    figures = [json.loads(value) for reports in terminalreporter.stats.values() for report in reports
               if getattr(report, 'when', None) == 'call'
               for name, value in getattr(report, 'user_properties', ()) if name == 'killpoints']
    if figures:
        import killpoints
        terminalreporter.write_sep('=', 'killed at every point')
        terminalreporter.write_line(killpoints.table(figures))
