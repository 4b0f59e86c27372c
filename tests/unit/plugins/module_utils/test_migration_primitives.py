"""Live migration primitives without a host: endpoints, the port check, what the kernel log
says went wrong, and a VM's definition carried to another host."""
import hashlib
import os
import socket

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils.common import Settings, V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.guest_configs import (
    configs_dir, portable_definition, received_definition)
from ansible_collections.v3vee.palacios.plugins.module_utils.migration import (
    check_endpoint, kernel_reason, port_free, stream_url)
from ansible_collections.v3vee.palacios.plugins.module_utils.validate import check_xml

XML = b'<vm class="PC"><memory>128</memory><cores count="1"/></vm>\n'
KS = 'palacios (pcore 0) linux_module/iface-keyed-stream.c'


@pytest.mark.parametrize('address', ['web1.example.org', '10.0.0', '10.0.0.256', '', '::1'])
def test_endpoint_needs_a_dotted_quad_because_the_kernel_uses_in_aton(address):
    with pytest.raises(V3veeError, match='IPv4 address'):
        check_endpoint(address, 9000)


@pytest.mark.parametrize('port', [0, 65536, -1])
def test_endpoint_port_must_be_a_tcp_port(port):
    with pytest.raises(V3veeError, match='between 1 and 65535'):
        check_endpoint('192.0.2.1', port)


def test_urls_listen_on_receive_and_connect_on_send():
    check_endpoint('0.0.0.0', 9000)
    assert stream_url('receive', '0.0.0.0', 9000) == 'net:a:0.0.0.0:9000'
    assert stream_url('send', '192.0.2.20', 9000) == 'net:c:192.0.2.20:9000'


def test_a_port_someone_listens_on_is_refused_before_any_tool_runs():
    with socket.socket() as busy:
        busy.bind(('0.0.0.0', 0))
        busy.listen(1)
        with pytest.raises(V3veeError, match='Port %d cannot be listened on' % busy.getsockname()[1]):
            port_free(busy.getsockname()[1])
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        free = probe.getsockname()[1]
    port_free(free)


def reason(tmp_path, *messages):
    log = tmp_path / 'kmsg.log'
    log.write_text(''.join('[%12.6f] %s\n' % (i, m) for i, m in enumerate(messages)))
    return kernel_reason(Settings(kernel_log=str(log)), 'Receiving (live-migrating) Guest to KEYED_STREAM:net:a:0.0.0.0:9000')


def test_kernel_log_explains_a_kernel_without_live_migration(tmp_path):
    text, lines = reason(tmp_path, 'palacios (pcore 0): Palacios: Creating V3 Guest...',
                         'palacios (pcore 0): Unhandled ctrl cmd: 35')
    assert 'built without LIVE_MIGRATION' in text and len(lines) == 1


def test_kernel_log_explains_the_broken_stream_from_this_run_only(tmp_path):
    older = '%s(2546): Bind err: -98' % KS
    text, lines = reason(tmp_path, older,
                         'palacios (pcore 0): Receiving (live-migrating) Guest to KEYED_STREAM:net:a:0.0.0.0:9000',
                         '%s(2747): Key mismatch in open_key_net - expect memory_bitmap_bits but got ' % KS,
                         'palacios (pcore 0 vm web): ERROR at palacios/src/palacios/vmm_checkpoint.c(1529): Unable to '
                         'receive VM', 'palacios (pcore 0): Error receiving VM')
    assert 'Linux 3.19' in text and len(lines) == 4 and older not in ''.join(lines)


@pytest.mark.parametrize('line, words', [
    ('%s(2546): Bind err: -98' % KS, 'in use'),
    ('%s(2713): Unable to open key for reading on net_stream (recv key len)' % KS, 'first connection'),
    ('palacios (pcore 0 vm web): ERROR at palacios/src/palacios/vmm_checkpoint.c(1456): Cannot currently handle '
     'nested paging', 'shadow paging'),
])
def test_kernel_log_explains_receive_failures(tmp_path, line, words):
    text = reason(tmp_path, 'palacios (pcore 0): Receiving (live-migrating) Guest to KEYED_STREAM:net:a:0.0.0.0:9000',
                  line)[0]
    assert words in text


def test_kernel_log_without_a_known_reason_says_nothing(tmp_path):
    assert reason(tmp_path, 'palacios (pcore 0): Error receiving VM')[0] is None


def test_a_config_file_moves_by_path_and_sha256(tmp_path):
    config = tmp_path / 'web.xml'
    config.write_bytes(XML)
    record = {'image': None, 'config': str(config), 'config_options': {}}
    definition = portable_definition(record, str(tmp_path / 'src' / 'inventory.db'))
    assert definition['config_sha256'] == hashlib.sha256(XML).hexdigest()
    assert definition['config_xml'] == XML.decode() and not definition['config_inline']
    made, shape, inline = received_definition('web', definition, str(tmp_path / 'dst' / 'inventory.db'))
    assert made == {'image': None, 'config': str(config), 'config_options': {}} and inline is None
    assert (shape.mem_mb, shape.vcores, shape.paging) == (128, 1, 'shadow')
    config.write_bytes(XML.replace(b'128', b'256'))
    with pytest.raises(V3veeError, match='differs on this host'):
        received_definition('web', definition, str(tmp_path / 'dst' / 'inventory.db'))
    os.unlink(str(config))
    with pytest.raises(V3veeError, match='needs its config .* on this host too'):
        received_definition('web', definition, str(tmp_path / 'dst' / 'inventory.db'))


def test_an_inline_config_is_staged_from_its_xml_on_the_other_host(tmp_path):
    src_inventory = str(tmp_path / 'src' / 'inventory.db')
    carried = {'config': 'x', 'config_inline': True, 'config_xml': XML.decode(),
               'config_sha256': hashlib.sha256(XML).hexdigest()}
    made, _shape, inline = received_definition('web', carried, str(tmp_path / 'dst' / 'inventory.db'))
    assert os.path.dirname(inline.path) == configs_dir(str(tmp_path / 'dst' / 'inventory.db'))
    assert made['config'] == inline.path and inline.data == XML
    os.makedirs(configs_dir(src_inventory))
    staged = os.path.join(configs_dir(src_inventory), os.path.basename(inline.path))
    with open(staged, 'wb') as handle:
        handle.write(XML)
    assert portable_definition({'config': staged}, src_inventory)['config_inline'] is True
    with pytest.raises(V3veeError, match='altered on the way'):
        received_definition('web', {'config': 'x', 'config_inline': True, 'config_xml': XML.decode(),
                                    'config_sha256': '0' * 64}, str(tmp_path / 'dst' / 'inventory.db'))


def test_a_definition_needs_an_image_or_a_config(tmp_path):
    with pytest.raises(V3veeError, match='neither an image nor a config'):
        received_definition('web', {'config_options': {}}, str(tmp_path / 'inventory.db'))
    assert portable_definition({'config': str(tmp_path / 'gone.xml')}, str(tmp_path / 'i.db'))['config_error']


@pytest.mark.parametrize('paging, mode', [
    ('<paging mode="nested"/>', 'nested'), ('<paging mode="NESTED"/>', 'nested'),
    ('<paging><mode>nested</mode></paging>', 'nested'), ('<paging mode="shadow"/>', 'shadow'), ('', 'shadow'),
])
def test_the_config_tells_its_paging_mode(paging, mode):
    xml = '<vm class="PC"><memory>128</memory>%s<cores count="1"/></vm>' % paging
    assert check_xml(xml.encode(), 'test').paging == mode
