import struct

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils import validate

GOOD = '<vm class="PC"><memory opt_tag="mem">256</memory><cores count="2"><core/><core/></cores></vm>'


@pytest.mark.parametrize('name', ['', 'a,b', 'a\tb', 'a\nb', 'a\x00b', 'a\x07b', 'x' * 128, '\u00e9' * 64])
def test_bad_names_are_rejected(name):
    with pytest.raises(V3veeError):
        validate.validate_name(name)


@pytest.mark.parametrize('name', ['web1', 'my vm', 'x' * 127, 'caf\u00e9', '$HOME'])
def test_good_names_pass(name):
    assert validate.validate_name(name) == name


def write(tmp_path, text, name='vm.xml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_good_config_gives_its_shape(tmp_path):
    shape = validate.check_config(write(tmp_path, GOOD))
    assert (shape.mem_mb, shape.vcores, shape.mem_bytes) == (256, 2, 256 * 1048576)


def test_opt_tag_override_changes_memory_case_insensitively(tmp_path):
    assert validate.check_config(write(tmp_path, GOOD), {'MEM': '512'}).mem_mb == 512


def test_unknown_opt_tag_is_rejected(tmp_path):
    with pytest.raises(V3veeError, match='matches no opt_tag'):
        validate.check_config(write(tmp_path, GOOD), {'cpus': '2'})


@pytest.mark.parametrize('text,message', [
    ('<vm class="PC"><memory>256</memory>', 'not well-formed'),
    ('<vm><memory>256</memory><cores count="1"/></vm>', 'class="PC"'),
    ('<vm class="HVM"><memory>256</memory><cores count="1"/></vm>', 'class="PC"'),
    ('<vm class="PC"><cores count="1"/></vm>', 'no <memory>'),
    ('<vm class="PC"><memory>0</memory><cores count="1"/></vm>', 'positive'),
    ('<vm class="PC"><memory>256</memory></vm>', 'cores count'),
    ('<vm class="PC"><memory>256</memory><cores count="0"/></vm>', 'at least 1'),
    ('<vm class="PC" memory="1"><memory>256</memory><cores count="1"/></vm>', 'both'),
])
def test_configs_the_kernel_or_v3_create_would_reject(tmp_path, text, message):
    with pytest.raises(V3veeError, match=message):
        validate.check_config(write(tmp_path, text))


def test_memory_may_be_an_attribute(tmp_path):
    assert validate.check_config(write(tmp_path, '<vm class="PC" memory="64"><cores count="1"/></vm>')).mem_mb == 64


def test_missing_file_reference_is_rejected_relative_to_the_xml(tmp_path):
    text = GOOD.replace('</vm>', '<files><file id="d" filename="disk.img"/></files></vm>')
    path = write(tmp_path, text)
    with pytest.raises(V3veeError, match='disk.img'):
        validate.check_config(path)
    (tmp_path / 'disk.img').write_bytes(b'x')
    assert validate.check_config(path).files == [str(tmp_path / 'disk.img')]


@pytest.mark.parametrize('path', ['relative.xml', '/nonexistent/vm.xml'])
def test_config_path_must_be_absolute_and_exist(path):
    with pytest.raises(V3veeError):
        validate.check_config(path)


def image_bytes(xml, cookie=b'v3vee\x00\x00\x01'):
    data = xml.encode()
    return cookie + struct.pack('<I', len(data)) + data + b'\x00' * 8 + struct.pack('<Q', 0) + b'\x00' * 8


def test_image_shape_comes_from_its_embedded_xml(tmp_path):
    path = tmp_path / 'vm.img'
    path.write_bytes(image_bytes(GOOD))
    assert validate.check_image(str(path)).mem_mb == 256


def test_xml_given_as_image_is_rejected(tmp_path):
    with pytest.raises(V3veeError, match='not a Palacios guest image'):
        validate.check_image(write(tmp_path, GOOD, 'vm.img'))


def test_truncated_image_is_rejected(tmp_path):
    path = tmp_path / 'vm.img'
    path.write_bytes(image_bytes(GOOD)[:30])
    with pytest.raises(V3veeError, match='truncated'):
        validate.check_image(str(path))
