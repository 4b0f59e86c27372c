"""Stand-in for pypa's get-pip.py, used by ansible-test to put pip into its sanity venvs.

ansible-test downloads get-pip.py from a host that is not a package registry; CI here only
reaches the registries. This installs pip from the interpreter's bundled ensurepip, then the
exact packages ansible-test asked for (e.g. pip==24.2) from the package index.
"""
import subprocess
import sys


def main():
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'],
                          stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)


if __name__ == '__main__':
    main()
