"""Engine figures on a simulated host: time per lifecycle step for N VMs, v3 tool runs, /proc
file reads and bytes, peak memory. Prints figures; asserts nothing.

    python benchmarks/engine_bench.py [--vms 32]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
from conftest import ROOT as COLLECTION_ROOT  # noqa: E402  (importing it makes v3vee.palacios importable)

from ansible_collections.v3vee.palacios.plugins.module_utils import proc  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import subprocess_runner  # noqa: E402
from ansible_collections.v3vee.palacios.plugins.module_utils.vm import Host  # noqa: E402

READS = {'files': 0, 'bytes': 0}
_read = proc.ProcReader._read


def counting_read(self, name):
    text = _read(self, name)
    READS['files'] += 1
    READS['bytes'] += len(text)
    return text


proc.ProcReader._read = counting_read


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--vms', type=int, default=32)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='v3vee-bench-')
    try:
        sim = os.path.join(work, 'sim')
        subprocess.check_call([sys.executable, os.path.join(COLLECTION_ROOT, 'roles/simulator/files/v3sim.py'),
                               'install', '--root', sim], stdout=subprocess.DEVNULL)
        v3sim = os.path.join(sim, 'bin', 'v3sim')
        # 4 MB blocks (kernel allocation) so that 32 VMs of 4 MB fit in a small simulated host.
        subprocess.check_call([v3sim, 'load', '--options', 'mem_block_size=4194304'])
        env = dict(os.environ, PALACIOS_DIR=sim)
        for _chunk in range(args.vms):
            subprocess.check_call([os.path.join(sim, 'bin', 'v3_mem'), '-k', '-a', '4'], env=env,
                                  stdout=subprocess.DEVNULL)
        xml = os.path.join(work, 'vm.xml')
        with open(xml, 'w') as handle:
            handle.write('<vm class="PC"><memory>4</memory><cores count="1"><core/></cores></vm>')
        settings = Settings(tools_dir=os.path.join(sim, 'bin'), proc_dir=os.path.join(sim, 'proc', 'v3vee'),
                            dev_dir=os.path.join(sim, 'dev'), inventory_path=os.path.join(work, 'inv.db'),
                            palacios_dir=sim)
        store = InventoryStore(settings.inventory_path)
        definition = {'image': None, 'config': xml, 'config_options': {}}
        print('%-10s %8s %10s %10s %12s' % ('state', 'VMs', 's/VM', 'tools/VM', 'reads/VM'))
        for desired in ('running', 'paused', 'stopped', 'restarted', 'absent'):
            host = Host(settings, subprocess_runner)
            READS.update(files=0, bytes=0)
            start = time.time()
            with store.transaction():
                for i in range(args.vms):
                    host.converge(store, 'vm%02d' % i, desired, definition=definition, force=True)
            took = time.time() - start
            print('%-10s %8d %10.3f %10.2f %12.2f' % (desired, args.vms, took / args.vms,
                                                      len(host.tools.commands) / float(args.vms),
                                                      READS['files'] / float(args.vms)))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print('peak RSS of the engine process: %.1f MB' % (usage.ru_maxrss / 1024.0))
    finally:
        subprocess.call([os.path.join(work, 'sim', 'bin', 'v3sim'), 'unload'], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
