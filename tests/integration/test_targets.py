"""Each directory in targets/ is one integration target: a role whose tasks assert behaviour
against a fresh simulated host. A target with a file `reserve_mb` gets that much memory
reserved for Palacios up front (default 1024 MB)."""
import json
import os

import pytest

from conftest import TARGETS

NAMES = sorted(d for d in os.listdir(TARGETS) if os.path.isfile(os.path.join(TARGETS, d, 'tasks', 'main.yml')))


@pytest.mark.parametrize('target', NAMES)
def test_target(target, target_runner, tmp_path):
    reserve = os.path.join(TARGETS, target, 'reserve_mb')
    kwargs = {}
    if os.path.exists(reserve):
        kwargs['reserve_mb'] = int(open(reserve).read().strip())
    proc = target_runner(target, **kwargs)
    assert 'failed=0' in proc.stdout
    # The simulator logs every tool run: the collection must never have run v3_mem_reset (it drops
    # every pool and loses hot-removed memory, interface spec observed item 18).
    log = os.path.join(str(tmp_path), 'sim', 'tools.log')
    ran = []
    if os.path.exists(log):
        with open(log) as handle:
            ran = [json.loads(line)[0] for line in handle]
    assert 'v3_mem_reset' not in ran, 'target %s ran v3_mem_reset' % target
