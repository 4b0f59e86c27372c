import os
import stat

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import guest_configs as gc
from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.inventory import InventoryStore, new_record

GOOD = '<vm class="PC"><memory opt_tag="mem">128</memory><cores count="1"><core/></cores></vm>'
OTHER = GOOD.replace('128', '256')


@pytest.fixture
def inv(tmp_path):
    lib = tmp_path / 'lib'
    lib.mkdir(mode=0o700)
    return str(lib / 'inventory.db')


def listing(inv):
    directory = gc.configs_dir(inv)
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else None


def test_inline_config_goes_beside_the_inventory_named_by_vm_and_content(inv):
    item = gc.prepare(inv, 'web1', GOOD)
    assert os.path.dirname(item.path) == os.path.join(os.path.dirname(inv), 'configs')
    assert os.path.basename(item.path).startswith('web1-') and item.path.endswith('.xml')
    assert gc.prepare(inv, 'web1', GOOD).path == item.path
    assert gc.prepare(inv, 'web1', OTHER).path != item.path
    assert gc.prepare(inv, 'web2', GOOD).path != item.path
    assert gc.is_managed(inv, item.path)
    assert item.definition == {'image': None, 'config': item.path, 'config_options': {}}
    assert (item.shape.mem_mb, item.shape.vcores) == (128, 1)


@pytest.mark.parametrize('name', ['../../etc/passwd', 'a/b', '.hidden', '..', '-x', 'caf\u00e9 \u00e9' * 15, 'x' * 127])
def test_any_valid_vm_name_gives_a_plain_bounded_file_name_in_the_directory(inv, name):
    path = gc.prepare(inv, name, GOOD).path
    assert os.path.dirname(path) == gc.configs_dir(inv)
    base = os.path.basename(path)
    assert '/' not in base and base[0] not in '.-' and len(base) <= 85
    assert gc.is_managed(inv, path)


@pytest.mark.parametrize('text,message', [
    ('<vm class="PC"><memory>128</memory>', 'not well-formed'),
    ('<vm><memory>128</memory><cores count="1"/></vm>', 'class="PC"'),
    ('<vm class="PC"><cores count="1"/></vm>', 'no <memory>'),
    ('<vm class="PC"><memory>128</memory></vm>', 'cores count'),
    ('<vm class="PC"><memory>128</memory><cores count="1"/><files><file id="d" filename="disk.img"/></files></vm>',
     'is relative'),
    ('<vm class="PC"><memory>128</memory><cores count="1"/><files><file id="d" filename="/nonexistent/disk.img"/>'
     '</files></vm>', '/nonexistent/disk.img'),
])
def test_bad_inline_xml_is_refused_and_nothing_is_written(inv, text, message):
    with pytest.raises(V3veeError, match=message):
        gc.checked_definition('web1', inv, config_xml=text)
    assert listing(inv) is None


def test_absolute_file_references_are_checked_on_the_host(inv, tmp_path):
    disk = tmp_path / 'disk.img'
    disk.write_text('DISK')
    text = GOOD.replace('</vm>', '<files><file id="d" filename="%s"/></files></vm>' % disk)
    assert gc.prepare(inv, 'web1', text).shape.files == [str(disk)]


def test_options_apply_to_inline_xml_and_need_an_xml(inv):
    definition, shape, inline = gc.checked_definition('web1', inv, config_xml=GOOD, config_options={'mem': 512})
    assert shape.mem_mb == 512 and definition['config_options'] == {'mem': '512'} and inline is not None
    with pytest.raises(V3veeError, match='matches no opt_tag'):
        gc.checked_definition('web1', inv, config_xml=GOOD, config_options={'cpus': 2})
    with pytest.raises(V3veeError, match='need config or config_xml'):
        gc.checked_definition('web1', inv, image='/x.img', config_options={'mem': 512})
    with pytest.raises(V3veeError, match='mutually exclusive'):
        gc.checked_definition('web1', inv, config='/x.xml', config_xml=GOOD)


def test_write_is_private_atomic_and_idempotent(inv):
    configs = gc.GuestConfigs(inv)
    item = gc.prepare(inv, 'web1', GOOD)
    assert configs.write(item) is True
    assert configs.write(item) is False
    assert stat.S_IMODE(os.stat(gc.configs_dir(inv)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(item.path).st_mode) == 0o600
    with open(item.path, 'rb') as handle:
        assert handle.read() == GOOD.encode()
    assert listing(inv) == [os.path.basename(item.path)]  # no temp file left


def test_check_mode_predicts_the_write_and_writes_nothing(inv):
    item = gc.prepare(inv, 'web1', GOOD)
    assert gc.GuestConfigs(inv, check_mode=True).write(item) is True
    assert listing(inv) is None
    gc.GuestConfigs(inv).write(item)
    assert gc.GuestConfigs(inv, check_mode=True).write(item) is False


def test_a_tampered_file_is_rewritten(inv):
    item = gc.prepare(inv, 'web1', GOOD)
    configs = gc.GuestConfigs(inv)
    configs.write(item)
    os.chmod(item.path, 0o644)
    assert configs.write(item) is True and stat.S_IMODE(os.stat(item.path).st_mode) == 0o600
    with open(item.path, 'w') as handle:
        handle.write(OTHER)
    assert configs.write(item) is True
    with open(item.path, 'rb') as handle:
        assert handle.read() == GOOD.encode()


def test_a_planted_symlink_is_replaced_not_followed(inv, tmp_path):
    item = gc.prepare(inv, 'web1', GOOD)
    os.mkdir(gc.configs_dir(inv), 0o700)
    victim = tmp_path / 'victim'
    victim.write_text('precious')
    os.symlink(str(victim), item.path)
    assert gc.GuestConfigs(inv).write(item) is True
    assert victim.read_text() == 'precious'
    assert not os.path.islink(item.path)


@pytest.mark.parametrize('make', ['symlink', 'world_writable'])
def test_a_directory_that_is_not_private_is_refused(inv, tmp_path, make):
    directory = gc.configs_dir(inv)
    if make == 'symlink':
        target = tmp_path / 'elsewhere'
        target.mkdir()
        os.symlink(str(target), directory)
    else:
        os.mkdir(directory)
        os.chmod(directory, 0o777)
    with pytest.raises(V3veeError, match='writable by nobody else'):
        gc.GuestConfigs(inv).write(gc.prepare(inv, 'web1', GOOD))


def test_prune_removes_only_unreferenced_managed_files(inv, tmp_path):
    configs = gc.GuestConfigs(inv)
    old, new = gc.prepare(inv, 'web1', GOOD), gc.prepare(inv, 'web1', OTHER)
    configs.write(old)
    configs.write(new)
    foreign = os.path.join(gc.configs_dir(inv), 'notes.xml')
    open(foreign, 'w').close()
    candidates = [old.path, new.path, foreign, str(tmp_path / 'web1.xml')]
    assert gc.GuestConfigs(inv, check_mode=True).prune(candidates, [new.path]) == [old.path]
    assert os.path.exists(old.path)
    assert configs.prune(candidates, [new.path]) == [old.path]
    assert listing(inv) == sorted(['notes.xml', os.path.basename(new.path)])


def converge_fake(store, name, config, fail=False):
    """A stand-in for Host.converge: records `config` for `name` (or raises after recording nothing)."""
    def run():
        if fail:
            raise V3veeError('refused')
        definition = {'image': None, 'config': config, 'config_options': {}}
        store.put(new_record(name, definition))
        return {'changed': False, 'vm': {'in_inventory': True, 'config': config}, 'steps': []}
    return run


def test_changed_content_replaces_the_file_and_removes_the_old_one(inv):
    store = InventoryStore(inv)
    configs = gc.GuestConfigs(inv)
    first, second = gc.prepare(inv, 'web1', GOOD), gc.prepare(inv, 'web1', OTHER)
    with store.transaction():
        result = gc.converge_with_config(configs, store, 'web1', 'running', first,
                                         converge_fake(store, 'web1', first.path))
    assert result['changed'] and result['guest_configs'] == {'written': [first.path], 'removed': []}
    with store.transaction():
        result = gc.converge_with_config(configs, store, 'web1', 'running', second,
                                         converge_fake(store, 'web1', second.path))
    assert result['guest_configs'] == {'written': [second.path], 'removed': [first.path]}
    assert listing(inv) == [os.path.basename(second.path)]


def test_a_refused_change_leaves_no_file_behind(inv):
    store = InventoryStore(inv)
    configs = gc.GuestConfigs(inv)
    first, second = gc.prepare(inv, 'web1', GOOD), gc.prepare(inv, 'web1', OTHER)
    with store.transaction():
        gc.converge_with_config(configs, store, 'web1', 'running', first, converge_fake(store, 'web1', first.path))
    with pytest.raises(V3veeError):
        with store.transaction():
            gc.converge_with_config(configs, store, 'web1', 'running', second,
                                    converge_fake(store, 'web1', second.path, fail=True))
    assert listing(inv) == [os.path.basename(first.path)]


def test_absent_writes_nothing_and_removes_the_vms_file(inv):
    store = InventoryStore(inv)
    configs = gc.GuestConfigs(inv)
    item = gc.prepare(inv, 'web1', GOOD)
    with store.transaction():
        gc.converge_with_config(configs, store, 'web1', 'running', item, converge_fake(store, 'web1', item.path))

    def delete():
        store.delete('web1')
        return {'changed': True, 'vm': {'in_inventory': False, 'config': None}, 'steps': ['free']}
    with store.transaction():
        result = gc.converge_with_config(configs, store, 'web1', 'absent', item, delete)
    assert result['guest_configs'] == {'written': [], 'removed': [item.path]}
    assert listing(inv) == []
