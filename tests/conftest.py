"""Make the collection importable as ansible_collections.v3vee.palacios for plain pytest runs."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collections_root():
    parts = ROOT.split(os.sep)
    if len(parts) > 3 and parts[-3] == 'ansible_collections':
        return os.sep.join(parts[:-3])  # already inside an ansible_collections tree (ansible-test)
    base = os.path.join(ROOT, '.tmp', 'collections')
    link = os.path.join(base, 'ansible_collections', 'v3vee', 'palacios')
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    return base


sys.path.insert(0, _collections_root())
