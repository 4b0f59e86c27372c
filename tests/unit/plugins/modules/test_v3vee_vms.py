"""v3vee_vms input handling: what fails before any lock or tool, and the docs matching the argspec."""
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from moddocs import module_doc

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.vmspec import vm_item_spec
from ansible_collections.v3vee.palacios.plugins.modules import v3vee_vms


def validate(vms):
    return ArgumentSpecValidator(v3vee_vms.vms_argument_spec()).validate({'vms': vms})


def test_unknown_keys_in_an_item_are_refused_by_the_argument_spec():
    result = validate([{'name': 'web1', 'state': 'running', 'memory': 512}])
    assert result.error_messages and 'memory' in ' '.join(result.error_messages)


def test_image_and_config_together_are_refused_by_the_argument_spec():
    result = validate([{'name': 'web1', 'image': '/a.img', 'config': '/a.xml'}])
    assert any('mutually exclusive' in m for m in result.error_messages)


def test_config_options_need_config_or_config_xml(tmp_path):
    items = validate([{'name': 'web1', 'image': '/a.img', 'config_options': {'mem': 1}}]).validated_parameters['vms']
    with pytest.raises(V3veeError, match='need config or config_xml'):
        v3vee_vms.jobs_of(items, str(tmp_path / 'inventory.db'))


def test_config_xml_items_are_validated_and_placed_in_the_managed_directory(tmp_path):
    xml = ('<vm class="PC"><memory>128</memory><cores count="1"><core/></cores></vm>')
    items = validate([{'name': 'web1', 'config_xml': xml, 'state': 'stopped'},
                      {'name': 'web2', 'state': 'absent'}]).validated_parameters['vms']
    jobs, inline = v3vee_vms.jobs_of(items, str(tmp_path / 'inventory.db'))
    assert [job.name for job in jobs] == ['web1', 'web2']
    assert inline[1] == ('web2', 'absent', None)
    name, state, config = inline[0]
    assert (name, state) == ('web1', 'stopped')
    assert config.path.startswith(str(tmp_path / 'configs') + '/') and jobs[0].definition['config'] == config.path
    assert not (tmp_path / 'configs').exists()  # validated only: written under the lock
    items = validate([{'name': 'web1', 'config_xml': '<vm class="PC">'}]).validated_parameters['vms']
    with pytest.raises(V3veeError, match='^vms: web1: '):
        v3vee_vms.jobs_of(items, str(tmp_path / 'inventory.db'))


def test_a_valid_item_gets_v3vee_vm_defaults():
    result = validate([{'name': 'web1'}])
    assert not result.error_messages
    assert result.validated_parameters['vms'] == [{'name': 'web1', 'state': 'present', 'image': None,
                                                   'config': None, 'config_xml': None, 'config_options': None,
                                                   'recreate': False,
                                                   'force': False}]


def test_duplicate_names_fail_naming_the_items(tmp_path):
    items = validate([{'name': 'a'}, {'name': 'b'}, {'name': 'a'}]).validated_parameters['vms']
    with pytest.raises(V3veeError, match="'a' is given twice \\(items 1 and 3\\)"):
        v3vee_vms.jobs_of(items, str(tmp_path / 'inventory.db'))


def test_a_bad_definition_fails_naming_the_vm(tmp_path):
    items = validate([{'name': 'a', 'config': str(tmp_path / 'missing.xml')}]).validated_parameters['vms']
    with pytest.raises(V3veeError, match='^vms: a: .*missing.xml does not exist'):
        v3vee_vms.jobs_of(items, str(tmp_path / 'inventory.db'))


def _doc():
    return module_doc('v3vee_vms')


def test_item_suboptions_are_documented_exactly_as_the_spec():
    suboptions = _doc()['options']['vms']['suboptions']
    spec = vm_item_spec()
    assert sorted(suboptions) == sorted(spec)
    for name, option in spec.items():
        assert suboptions[name]['type'] == option['type']
        assert suboptions[name].get('default') == option.get('default')
        assert suboptions[name].get('choices') == option.get('choices')
