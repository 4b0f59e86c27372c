"""freed_vms: the dry run of "delete these VMs, then release the memory" predicts the release."""
from ansible_collections.v3vee.palacios.plugins.modules import v3vee_memory, v3vee_vm

from conftest import BIOS_XML


def test_check_mode_counts_the_memory_of_freed_vms_as_released_and_predicts_the_real_run(sim, run_module):
    for name, state in (('web1', 'running'), ('web2', 'paused')):
        assert not run_module(v3vee_vm, name=name, config=BIOS_XML, state=state).get('failed')

    blind = run_module(v3vee_memory, check_mode=True, total_mb=0)
    assert blind['failed'] and 'in use' in blind['msg']
    partial = run_module(v3vee_memory, check_mode=True, total_mb=0, freed_vms=['web1'])
    assert partial['failed'] and '128 MB stays reserved' in partial['msg']
    predicted = run_module(v3vee_memory, check_mode=True, total_mb=0, freed_vms=['web1', 'web2', 'unknown'])
    assert not predicted.get('failed') and predicted['changed'] and predicted['commands'] == []
    assert sim.guests().keys() == {'web1', 'web2'}

    # A real run is not fooled: the VMs still hold their memory.
    refused = run_module(v3vee_memory, total_mb=0, freed_vms=['web1', 'web2'])
    assert refused['failed'] and refused['commands'] == [] and refused['changed'] is False

    for name in ('web1', 'web2'):
        assert not run_module(v3vee_vm, name=name, state='absent', force=True).get('failed')
    real = run_module(v3vee_memory, total_mb=0, freed_vms=['web1', 'web2'])
    assert not real.get('failed') and real['changed']
    assert real['steps'] == predicted['steps']
    assert real['reserved_mb_after'] == predicted['reserved_mb_after'] == {'0': 0}
    assert real['pools_after'] == predicted['pools_after']
