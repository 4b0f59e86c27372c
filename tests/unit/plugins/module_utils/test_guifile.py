import os
import stat

import pytest

from ansible_collections.v3vee.palacios.plugins.module_utils import guifile
from ansible_collections.v3vee.palacios.plugins.module_utils.guifile import GuiLine

# Lines exactly as the GUI writes them (interface spec 6.2): wizard, activated, running, paused.
WIZARD = b'web1,/home/u/web1.xml,,0,web1.img\n'
ACTIVATED = b'web2,/home/u/web2.xml,/dev/v3-vm0,0,web2.img\n'
RUNNING = b'web3,/home/u/web3.xml,/dev/v3-vm1,2,web3.img\n'
PAUSED = b'web4,/home/u/web4.xml,/dev/v3-vm2,1,web4.img\n'


def reasons(bad):
    return dict((b['line'], b['reason']) for b in bad)


def test_the_guis_own_lines_parse():
    lines, bad = guifile.parse(WIZARD + ACTIVATED + RUNNING + PAUSED)
    assert bad == []
    assert lines == [
        GuiLine(1, 'web1', '/home/u/web1.xml', '', '0', 'web1.img'),
        GuiLine(2, 'web2', '/home/u/web2.xml', '/dev/v3-vm0', '0', 'web2.img'),
        GuiLine(3, 'web3', '/home/u/web3.xml', '/dev/v3-vm1', '2', 'web3.img'),
        GuiLine(4, 'web4', '/home/u/web4.xml', '/dev/v3-vm2', '1', 'web4.img'),
    ]


def test_empty_file_is_an_empty_inventory():
    assert guifile.parse(b'') == ([], [])


def test_blank_line_is_reported_with_its_number_not_a_crash():
    lines, bad = guifile.parse(WIZARD + b'\n' + RUNNING)
    assert [line.name for line in lines] == ['web1', 'web3']
    assert list(reasons(bad)) == [2] and 'blank' in reasons(bad)[2]


def test_whitespace_only_line_is_blank():
    bad = guifile.parse(b'   \t\n' + WIZARD)[1]
    assert 'blank' in reasons(bad)[1]


@pytest.mark.parametrize('text,count', [(b'web1', 1), (b'web1,/a.xml', 2), (b'web1,/a.xml,', 3), (b'web1,/a.xml,,0', 4)])
def test_short_line_is_reported(text, count):
    # The GUI indexes past the end of the split list on these (Qt assertion).
    lines, bad = guifile.parse(WIZARD + text + b'\n')
    assert [line.name for line in lines] == ['web1']
    assert reasons(bad)[2].startswith('short line: %d field(s)' % count)


def test_comma_inside_a_field_is_reported_as_too_many_fields():
    bad = guifile.parse(b'web,1,/a.xml,,0,a.img\n' + b'web5,/srv/a,b.xml,,0,x.img\n')[1]
    assert reasons(bad)[1].startswith('6 fields') and 'comma' in reasons(bad)[1]
    assert reasons(bad)[2].startswith('6 fields')


@pytest.mark.parametrize('digit', [b'3', b'', b'x', b' 2', b'-1', b'02'])
def test_bad_state_digit_is_reported(digit):
    bad = guifile.parse(b'web1,/a.xml,,' + digit + b',a.img\n')[1]
    assert 'state' in reasons(bad)[1]


def test_duplicate_names_are_all_reported_and_none_is_imported():
    lines, bad = guifile.parse(WIZARD + RUNNING + b'web1,/other.xml,/dev/v3-vm5,2,other.img\n')
    assert [line.name for line in lines] == ['web3']
    assert sorted(reasons(bad)) == [1, 3]
    assert all('duplicate name' in r and 'lines 1, 3' in r for r in reasons(bad).values())


def test_crlf_line_ends_are_accepted_like_qt_readline():
    lines, bad = guifile.parse(WIZARD.replace(b'\n', b'\r\n') + RUNNING.replace(b'\n', b'\r\n'))
    assert bad == [] and lines[0].image == 'web1.img' and lines[1].image == 'web3.img'


def test_last_line_without_newline_is_read():
    lines, bad = guifile.parse(WIZARD + RUNNING.rstrip(b'\n'))
    assert bad == [] and [line.name for line in lines] == ['web1', 'web3']


def test_non_utf8_line_is_reported_and_the_rest_read():
    lines, bad = guifile.parse(b'caf\xe9,/a.xml,,0,a.img\n' + RUNNING)
    assert [line.name for line in lines] == ['web3']
    assert 'UTF-8' in reasons(bad)[1]


def test_utf8_names_are_fine():
    lines, bad = guifile.parse(u'caf\u00e9,/a.xml,,0,a.img\n'.encode('utf-8'))
    assert bad == [] and lines[0].name == u'caf\u00e9'


@pytest.mark.parametrize('text,word', [
    (b',/a.xml,,0,a.img', 'empty'),                 # no name
    (b'web\t1,/a.xml,,0,a.img', 'control'),         # TAB breaks /proc
    (b'web1,/a.xml,/dev/sda,0,a.img', 'dev'),       # not a Palacios device
    (b'web1,/a.xml,v3-vm0,0,a.img', 'dev'),
    (b'web1,,,0,', 'neither'),                      # nothing to create it from
    (b'x' * 128 + b',/a.xml,,0,a.img', '127'),      # the kernel keeps 127 bytes
])
def test_lines_the_collection_cannot_use_are_reported(text, word):
    lines, bad = guifile.parse(text + b'\n')
    assert lines == [] and word in reasons(bad)[1]


def test_config_only_and_image_only_lines_are_usable():
    lines, bad = guifile.parse(b'a,/a.xml,,0,\nb,,,0,b.img\n')
    assert bad == [] and lines[0].image == '' and lines[1].config == ''


def test_render_writes_the_guis_format_and_parses_back():
    entries = [GuiLine(None, 'web1', '/a.xml', '', '0', ''), GuiLine(None, 'web2', '', '/dev/v3-vm3', '2', '/b.img')]
    data = guifile.render(entries)
    assert data == b'web1,/a.xml,,0,\nweb2,,/dev/v3-vm3,2,/b.img\n'
    lines, bad = guifile.parse(data)
    assert bad == [] and [line._replace(line=None) for line in lines] == entries


def test_render_of_nothing_is_an_empty_file():
    assert guifile.render([]) == b''


@pytest.mark.parametrize('state,digit', [('stopped', '0'), ('paused', '1'), ('running', '2'), ('ERROR', '0'),
                                         ('inactive', '0'), (None, '0')])
def test_gui_state_digits(state, digit):
    assert guifile.gui_state(state) == digit


@pytest.mark.parametrize('dev,digit,desired', [('', '0', 'inactive'), ('/dev/v3-vm0', '0', 'stopped'),
                                               ('', '1', 'paused'), ('/dev/v3-vm1', '2', 'running'),
                                               ('', '2', 'running')])
def test_desired_state_of_a_line(dev, digit, desired):
    assert guifile.desired_state(dev, digit) == desired


def test_field_problem():
    assert guifile.field_problem('config', '/srv/a.xml') is None
    assert 'comma' in guifile.field_problem('config', '/srv/a,b.xml')
    assert 'control' in guifile.field_problem('image', '/srv/a\nb.img')


def test_write_atomic_creates_0644_and_leaves_no_temp_file(tmp_path):
    path = str(tmp_path / guifile.FILE_NAME)
    guifile.write_atomic(path, b'a,/a.xml,,0,\n')
    assert open(path, 'rb').read() == b'a,/a.xml,,0,\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(str(tmp_path)) == [guifile.FILE_NAME]


def test_write_atomic_keeps_the_existing_mode(tmp_path):
    path = str(tmp_path / guifile.FILE_NAME)
    open(path, 'wb').write(b'old\n')
    os.chmod(path, 0o600)
    inode = os.stat(path).st_ino
    guifile.write_atomic(path, b'new\n')
    assert open(path, 'rb').read() == b'new\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.stat(path).st_ino != inode  # replaced by rename, never rewritten in place


def test_read_of_a_missing_file_is_none(tmp_path):
    assert guifile.read(str(tmp_path / 'nope.txt')) is None
