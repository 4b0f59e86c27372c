# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks that run before any v3 tool: names, images, XML configs.

Why each check exists (docs/palacios-interface.md): v3_create -b segfaults on a missing
or malformed XML (gotcha 3, observed 2); the kernel only accepts class="PC" with <memory> and
<cores count> (5.2); <file filename> is stat()ed relative to v3_create's working directory
(5.4); names are cut to 127 bytes and TAB/newline break /proc, commas break the GUI file (gotcha 9).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import struct
import unicodedata

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import NAME_MAX_BYTES

IMAGE_COOKIES = (b'v3vee\x00\x00\x01', b'v3vee\x00\x00\x00')


def validate_name(name):
    """Reject names the kernel, /proc or the GUI file cannot carry faithfully."""
    if name is None or name == '':
        raise V3veeError('VM name must not be empty.')
    raw = name.encode('utf-8', 'surrogateescape')
    if len(raw) > NAME_MAX_BYTES:
        raise V3veeError('VM name %r is %d bytes long; Palacios keeps only %d bytes, so the name in the '
                         'kernel would differ from the inventory. Use a shorter name.'
                         % (name, len(raw), NAME_MAX_BYTES))
    for char in name:
        if char == ',':
            raise V3veeError('VM name %r contains a comma, which breaks the GUI inventory file '
                             '(virtual_machines_list.txt is comma-separated).' % name)
        if unicodedata.category(char) in ('Cc', 'Cs'):
            raise V3veeError('VM name %r contains the control character %r (TAB, newline and NUL break '
                             '/proc/v3vee/v3-guests); use printable characters only.' % (name, char))
    return name


def _check_readable_file(path, what):
    if not path or not os.path.isabs(path):
        raise V3veeError('%s path %r must be absolute (the GUI stored bare file names that only worked '
                         'from its own working directory).' % (what, path))
    if not os.path.isfile(path):
        raise V3veeError('%s %s does not exist on the managed host (or is not a regular file there); the path is '
                         'read on the host the task runs on, not on the controller.' % (what, path))
    if not os.access(path, os.R_OK):
        raise V3veeError('%s %s on the managed host is not readable by this user.' % (what, path))


def _cfg_val(element, key):
    """vmm_config.c v3_cfg_val(): a value is an attribute or a child element's text, not both."""
    attr = element.get(key)
    child = element.find(key)
    if attr is not None and child is not None:
        raise V3veeError('<%s> gives %s both as attribute and as element.' % (element.tag, key))
    if attr is not None:
        return attr
    if child is not None:
        return (child.text or '').strip()
    return None


def _atoi(text):
    """C atoi(): leading digits, else 0."""
    digits = ''
    for char in (text or '').strip():
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else 0


class VmShape(object):
    """What a VM will need from the host: memory (MB) and vcores, from its XML; and its paging mode
    (v3_receive of memory needs shadow paging, spec 7)."""

    def __init__(self, mem_mb, vcores, files=None, paging='shadow'):
        self.mem_mb = mem_mb
        self.vcores = vcores
        self.files = files or []
        self.paging = paging

    @property
    def mem_bytes(self):
        return self.mem_mb * 1024 * 1024


def check_xml(text, source, base_dir=None, options=None, relative_files=True):
    """Validate a Palacios XML config the way the kernel and v3_create would, without the segfault.

    options: {opt_tag: value} overrides as passed to `v3_create -b`. base_dir: where v3_create
    will run (None: the files are packed already, as in an image). relative_files=False refuses
    relative <file filename>s (inline XML, whose directory the user does not choose). Returns a VmShape.
    """
    # Imported here: only a run that validates an XML pays for the XML parser (module start-up cost).
    import xml.etree.ElementTree as ET
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise V3veeError('%s is not well-formed XML (%s); v3_create -b would crash on it.' % (source, exc))
    options = options or {}
    tagged = {}
    for element in root.iter():
        tag = element.get('opt_tag')
        if tag:
            tagged.setdefault(tag.lower(), []).append(element)
    for key, value in options.items():
        if not key or '=' in key or any(c.isspace() for c in key):
            raise V3veeError('config_options key %r is not a valid opt_tag name.' % key)
        if key.lower() not in tagged:
            raise V3veeError('config_options key %r matches no opt_tag in %s (v3_create would print '
                             '"Could not find Config option"). Known: %s.'
                             % (key, source, ', '.join(sorted(tagged)) or 'none'))
        for element in tagged[key.lower()]:
            element.text = '%s' % value
    klass = _cfg_val(root, 'class')
    if klass != 'PC':
        raise V3veeError('%s: the root element needs class="PC" (found %r); Palacios accepts nothing else.'
                         % (source, klass))
    memory = _cfg_val(root, 'memory')
    if memory is None:
        raise V3veeError('%s has no <memory> (MB); Palacios requires it.' % source)
    mem_mb = _atoi(memory)
    if mem_mb <= 0:
        raise V3veeError('%s: <memory> must be a positive number of MB, got %r.' % (source, memory))
    cores = root.find('cores')
    count = _cfg_val(cores, 'count') if cores is not None else None
    if count is None:
        raise V3veeError('%s has no <cores count="N">; Palacios requires the new core format.' % source)
    vcores = _atoi(count)
    if vcores < 1:
        raise V3veeError('%s: <cores count> must be at least 1, got %r.' % (source, count))
    files = []
    files_el = root.find('files')
    for file_el in (files_el.findall('file') if files_el is not None else []):
        filename = _cfg_val(file_el, 'filename')
        if not filename:
            raise V3veeError('%s: a <file> has no filename.' % source)
        if not relative_files and not os.path.isabs(filename):
            raise V3veeError('%s: <file filename="%s"> is relative; inline XML has no directory of its own on the '
                             'managed host, so name the file by its absolute path there.' % (source, filename))
        if base_dir is not None:
            path = filename if os.path.isabs(filename) else os.path.join(base_dir, filename)
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise V3veeError('%s: <file filename="%s"> resolves to %s, which does not exist or is not '
                                 'readable (relative names resolve against the config\'s directory).'
                                 % (source, filename, path))
            files.append(path)
    # vmm_config.c: <paging mode="nested"> asks for nested paging (used when the CPU has it); any other
    # mode is shadow paging.
    paging_el = root.find('paging')
    mode = _cfg_val(paging_el, 'mode') if paging_el is not None else None
    return VmShape(mem_mb, vcores, files, 'nested' if (mode or '').lower() == 'nested' else 'shadow')


def check_config(path, options=None):
    """Validate an XML config file for `v3_create -b` (run in the file's directory)."""
    _check_readable_file(path, 'Config')
    with open(path, 'rb') as handle:
        text = handle.read()
    return check_xml(text, path, os.path.dirname(path), options)


def check_image(path):
    """Validate a pre-built image (utils/guest_creator format, section 5.4) for `v3_create <image>`."""
    _check_readable_file(path, 'Image')
    with open(path, 'rb') as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:8] not in IMAGE_COOKIES:
            raise V3veeError('Image %s is not a Palacios guest image (no "v3vee" header). An XML config '
                             'goes in the config option, not image.' % path)
        (xml_len,) = struct.unpack('<I', head[8:12])
        xml = handle.read(xml_len)
    if len(xml) != xml_len:
        raise V3veeError('Image %s is truncated (its header announces %d bytes of XML).' % (path, xml_len))
    return check_xml(xml, path)


def check_definition(image=None, config=None, config_options=None):
    """Validate whichever of image/config is given; returns its VmShape."""
    if image:
        return check_image(image)
    return check_config(config, config_options)
