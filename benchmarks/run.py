"""Run every benchmarks/*_bench.py and print their figures. Benchmarks assert nothing."""
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    scripts = sorted(glob.glob(os.path.join(HERE, '*_bench.py')))
    status = 0
    for script in scripts:
        print('== %s' % os.path.basename(script), flush=True)
        status |= subprocess.call([sys.executable, script] + sys.argv[1:])
    return status


if __name__ == '__main__':
    sys.exit(main())
