#!/usr/bin/env python
"""How long v3vee_facts' engine (facts.gather, not Ansible) takes on a host with 32 VMs, and
what it reads.

Builds a simulated Palacios host with the simulator (roles/simulator/files/v3sim.py) in a
temporary directory: module loaded with 4 MB blocks, 33 blocks reserved (v3_mem -k), 32 VMs
(16 recorded in the inventory, one recorded only, 16 made on the command line), and a kernel
log of a busy host (--log-lines, a Palacios message every --palacios-every lines). Then runs
gather() repeatedly and prints the time per run, the files opened and the bytes read (proc
files, kernel log), per subset and all together. Prints figures only; nothing is asserted.

    python benchmarks/facts_bench.py [--runs N] [--log-lines N] [--palacios-every N] [--keep]
"""

import argparse
import builtins
import json
import os
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tests/conftest.py makes this checkout importable as ansible_collections.v3vee.palacios.
runpy.run_path(os.path.join(ROOT, 'tests', 'conftest.py'))

from ansible_collections.v3vee.palacios.plugins.module_utils import facts  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore, new_record  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner  # noqa: E402  pylint: disable=wrong-import-position

V3SIM = os.path.join(ROOT, 'roles', 'simulator', 'files', 'v3sim.py')
TINY = '<vm class="PC">\n  <memory>4</memory>\n  <cores count="1"><core/></cores>\n</vm>\n'


def run(argv, env=None, cwd=None):
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise SystemExit('%s failed (%s): %s%s' % (' '.join(argv), proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def build_host(work, log_lines, palacios_every):
    sim = os.path.join(work, 'sim')
    bin_dir = os.path.join(sim, 'bin')
    env = dict(os.environ, PALACIOS_DIR=sim)
    run([sys.executable, V3SIM, 'install', '--root', sim])
    run([os.path.join(bin_dir, 'v3sim'), 'load', '--options', 'mem_block_size=4194304'])
    for dummy in range(33):
        run([os.path.join(bin_dir, 'v3_mem'), '-k', '-a', '4'], env=env)
    with open(os.path.join(work, 'tiny.xml'), 'w') as handle:
        handle.write(TINY)
    for index in range(32):
        run([os.path.join(bin_dir, 'v3_create'), '-b', 'tiny.xml', 'vm%02d' % index], cwd=work)
    for index in range(0, 32, 4):
        run([os.path.join(bin_dir, 'v3_launch'), '/dev/v3-vm%d' % index])
    settings = Settings(tools_dir=bin_dir, proc_dir=os.path.join(sim, 'proc', 'v3vee'), dev_dir=os.path.join(sim, 'dev'),
                        inventory_path=os.path.join(work, 'lib', 'inventory.db'), palacios_dir=sim,
                        kernel_log=os.path.join(sim, 'kmsg.log'), backend='simulator')
    store = InventoryStore(settings.inventory_path)
    with store.transaction():
        for index in range(16):
            state = 'running' if index % 4 == 0 else 'stopped'
            store.put(new_record('vm%02d' % index, {'config': os.path.join(work, 'tiny.xml')}, index,
                                 '/dev/v3-vm%d' % index, state, state))
        store.put(new_record('recorded-only', {'config': os.path.join(work, 'tiny.xml')}))
    store.close()
    # A busy host's kernel log: after the simulator's own lines, lots of other messages with a
    # Palacios message about vm00 every `palacios_every` lines.
    with open(settings.kernel_log, 'a') as handle:
        for index in range(log_lines):
            stamp = 1000 + index / 1000.0
            if palacios_every and index % palacios_every == 0:
                handle.write('[%12.6f] palacios (pcore 1 vm vm00): Handling exit %d\n' % (stamp, index))
            else:
                handle.write('[%12.6f] e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex %d\n'
                             % (stamp, index))
    return settings


class ReadCounter(object):
    """Counts files opened and bytes read through builtins.open (what the engine uses)."""

    def __init__(self):
        self.opened = []
        self.bytes = {}
        self.real_open = builtins.open

    def __enter__(self):
        counter = self

        def counting_open(path, mode='r', *args, **kwargs):
            handle = counter.real_open(path, mode, *args, **kwargs)
            counter.opened.append(str(path))
            read = handle.read

            def counted_read(*read_args):
                data = read(*read_args)
                counter.bytes[str(path)] = counter.bytes.get(str(path), 0) + len(data)
                return data
            handle.read = counted_read
            return handle

        builtins.open = counting_open
        return self

    def __exit__(self, *exc):
        builtins.open = self.real_open
        return False


def measure(settings, subsets, runs, **kwargs):
    times = []
    for dummy in range(runs):
        start = time.perf_counter()
        result = facts.gather(settings, subprocess_runner, subsets=subsets, **kwargs)
        times.append(time.perf_counter() - start)
    with ReadCounter() as counter:
        facts.gather(settings, subprocess_runner, subsets=subsets, **kwargs)
    return result, times, counter


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=50)
    parser.add_argument('--log-lines', type=int, default=200000, help='kernel log lines appended after the build')
    parser.add_argument('--palacios-every', type=int, default=100,
                        help='one of every N appended lines is a Palacios message about vm00 (0: none)')
    parser.add_argument('--keep', action='store_true', help='keep the simulated host')
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix='v3vee-facts-bench-')
    try:
        start = time.perf_counter()
        settings = build_host(work, args.log_lines, args.palacios_every)
        print('simulated host with 32 VMs built in %.1f s: %s' % (time.perf_counter() - start, work))
        proc_sizes = dict((name, os.path.getsize(os.path.join(settings.proc_dir, name)))
                          for name in sorted(os.listdir(settings.proc_dir)))
        print('proc files: %s' % ', '.join('%s %d B' % item for item in proc_sizes.items()))
        print('kernel log: %d B; inventory: %d B (read by SQLite, not counted below)'
              % (os.path.getsize(settings.kernel_log), os.path.getsize(settings.inventory_path)))
        print()
        print('%-34s %9s %9s %9s %6s %10s %10s' % ('subsets', 'median ms', 'min ms', 'max ms', 'files',
                                                   'proc B', 'log B'))
        cases = [([name], {}) for name in facts.SUBSETS]
        cases += [(['vms'], {'vm_details': True}), (list(facts.SUBSETS), {}), (list(facts.SUBSETS), {'vm_details': True}),
                  (['telemetry'], {'telemetry_lines': 1000}),
                  # vm31's messages are all older than the appended log: read back to the 16 MiB bound
                  (['telemetry'], {'telemetry_vm': 'vm31'})]
        summary = None
        for subsets, kwargs in cases:
            result, times, counter = measure(settings, subsets, args.runs, **kwargs)
            proc_bytes = sum(n for path, n in counter.bytes.items() if path.startswith(settings.proc_dir))
            log_bytes = counter.bytes.get(settings.kernel_log, 0)
            label = ','.join(subsets) + ''.join(' %s=%s' % item for item in kwargs.items())
            print('%-34s %9.2f %9.2f %9.2f %6d %10d %10d' % (
                label[:34], statistics.median(times) * 1000, min(times) * 1000, max(times) * 1000,
                len(counter.opened), proc_bytes, log_bytes))
            if subsets == list(facts.SUBSETS) and kwargs.get('vm_details'):
                summary = (result, counter)
        result, counter = summary
        proc_opened = sorted(os.path.basename(p) for p in counter.opened if p.startswith(settings.proc_dir))
        print()
        print('all subsets + vm_details opened these proc files: %s' % ', '.join(proc_opened))
        print('facts: %d VMs (%s), %d telemetry lines from %s, facts JSON %d B'
              % (len(result['vms']), json.dumps(result['vm_counts']['by_category']), len(result['telemetry']['lines']),
                 result['telemetry']['path'], len(json.dumps(result))))
    finally:
        if args.keep:
            print('kept %s' % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
