"""The benchmarks the README quotes run and print their tables (at the smallest scale: the
figures themselves are not tested, see the README's Performance section)."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, ansible_env


@pytest.mark.skipif(os.geteuid() != 0, reason='the fleet part needs network and mount namespaces (root)')
def test_startup_bench_prints_every_row_with_its_ratio_to_ping():
    env = dict(ansible_env(), V3VEE_FLEET_NAME='v3bsmoke', V3VEE_FLEET_NETWORK='198.18.236.0/24')
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env['PATH']
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'startup_bench.py'),
                           '--runs', '1', '--vms', '2', '--fleet', '2'], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:]
    rows = dict((m.group(1).strip(), float(m.group(2)))
                for m in re.finditer(r'^\| ([^|]+) \| [\d.]+ \| ([\d.]+) \| 1 \|$', proc.stdout, re.M))
    assert rows['ping'] == 1.0 and rows['fleet: ping play, 2 hosts'] == 1.0, proc.stdout
    assert any(label.startswith('v3vee_vms') for label in rows), proc.stdout
    assert any(label.startswith('fleet: v3vee_vms 2 hosts x 2 VMs') for label in rows), proc.stdout
    assert all(ratio > 0 for ratio in rows.values())
    assert re.search(r'^\| v3vee_vms \| running \| 2\.00 \|', proc.stdout, re.M), proc.stdout
