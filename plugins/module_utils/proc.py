# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for the /proc/v3vee files, and a reader that reads each file once.

Formats: docs/palacios-interface.md section 2 (linux_module/main.c, buddy.c).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
from collections import namedtuple

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError

MAX_VMS = 32            # linux_module/palacios.h MAX_VMS: slots 0..31
# What a Linux kernel can show (x86_64: NODES_SHIFT <= 10, NR_CPUS <= 8192; an order past 63 shifts
# beyond 64 bits). v3-info values outside these are refused: callers loop over nodes and shift by orders.
MAX_NODES = 1024
MAX_CPUS = 8192
MAX_ORDER_LIMIT = 63
NAME_MAX_BYTES = 127    # v3_create strncpy(name, argv, 127) into a 128-byte field
SEED_POOL_SIZE = 4194304  # the pool buddy_init allocates per node at insmod (order 22)
UNAVAILABLE = '<unable to get data for this VM>'
# The state parse_guests gives a line with UNAVAILABLE: on real Palacios that is the ghost a
# v3_create left when it crashed the kernel for want of pool memory (observed item 14).
BROKEN = 'UNAVAILABLE'
BROKEN_REMEDY = ('v3_free cannot remove it and the collection never acts on it; only a reboot of the '
                 'host clears it. It came from a v3_create without enough pool memory, which crashes '
                 'the kernel: reserve memory first (v3vee.palacios.v3vee_memory).')

# States as /proc/v3vee/v3-guests prints them (vmm_types.h v3_vm_state + "UNKNOWN" for resetting).
STABLE_STATES = ('stopped', 'running', 'paused', 'ERROR')

# ASCII digits only, and bounded: \d would take other scripts' digits, int() refuses 4300+ digits.
_DEV_RE = re.compile(r'/v3-vm([0-9]{1,4})$')
_COUNT_RE = re.compile(r'^([0-9]{1,20}) (\S+)$')

VmEntry = namedtuple('VmEntry', 'index name device state vcores regions mem_bytes vm_type')
Pool = namedtuple('Pool', 'base order size free')


def _slot_of(device):
    match = _DEV_RE.search(device)
    if not match or int(match.group(1)) >= MAX_VMS:
        raise V3veeError('Cannot parse the device %r in v3-guests: expected /dev/v3-vm<N>, N below %d.'
                         % (device, MAX_VMS))
    return int(match.group(1))


def _count(field, unit):
    # "2 vcores", "4 regions", "536870912 mem"
    match = _COUNT_RE.match(field)
    if not match or match.group(2) != unit:
        raise ValueError(field)
    return int(match.group(1))


def parse_guests(text):
    """Parse v3-guests: 7 TAB fields per VM (module since 2015), the old 2-field
    `name<TAB>dev` format (2012, what the GUI was written for), or the 3-field
    `name<TAB>dev<TAB><unable to get data for this VM>` variant. Returns VmEntry list by slot.
    """
    entries = []
    for number, line in enumerate(text.split('\n'), 1):
        if not line:
            continue
        fields = line.split('\t')
        try:
            if len(fields) >= 7:
                # A TAB inside a name (the kernel does not forbid it) adds fields on the
                # left: the last six fields are fixed, so the name is everything before them.
                name = '\t'.join(fields[:-6])
                device, state, vcores, regions, mem, vm_type = fields[-6:]
                entry = VmEntry(_slot_of(device), name, device, state, _count(vcores, 'vcores'),
                                _count(regions, 'regions'), _count(mem, 'mem'), vm_type)
            elif len(fields) == 3 and fields[2] == UNAVAILABLE:
                entry = VmEntry(_slot_of(fields[1]), fields[0], fields[1], BROKEN,
                                None, None, None, None)
            elif len(fields) == 2:
                entry = VmEntry(_slot_of(fields[1]), fields[0], fields[1], None, None, None, None, None)
            else:
                raise ValueError(line)
        except (ValueError, V3veeError):
            raise V3veeError('Cannot parse line %d of v3-guests: %r. Is this a Palacios /proc/v3vee?'
                             % (number, line))
        if any(e.index == entry.index for e in entries):
            # The kernel lists each slot once: acting on either line could hit the wrong VM.
            raise V3veeError('v3-guests lists %s twice (line %d: %r). Is this a Palacios /proc/v3vee?'
                             % (entry.device, number, line))
        entries.append(entry)
    return sorted(entries, key=lambda e: e.index)


def is_broken(entry):
    """A ghost slot: used (lowest-free-slot allocation skips it), never a VM to act on."""
    return entry.state == BROKEN


def broken_message(entry):
    return ('Slot %s holds a broken VM named %r (v3-guests: %s). %s'
            % (entry.device, entry.name, UNAVAILABLE, BROKEN_REMEDY))


_VCORE_RE = re.compile(r'^\s+vcore ([0-9]{1,10}) (\S+) on pcore ([0-9]{1,10}) ([0-9]{1,20}) exits rip=(\S+) (.*)$')
_REGION_RE = re.compile(r'^\s+region ([0-9]{1,10}) has HPAs (0x[0-9a-fA-F]{1,16})-(0x[0-9a-fA-F]{1,16}) '
                        r'\(node (-?[0-9]{1,10})\) GPA (0x[0-9a-fA-F]{1,16})(.*)$')
_ENTRY_RE = re.compile(r'^Entry: *([0-9]{1,4})$')
# read_guests_details prints "Name:         %s": what follows that padding is the name, spaces and all.
_NAME_PREFIX = 'Name:         '


def parse_guests_details(text):
    """Parse v3-guests-details into {slot: {'name', 'state', 'type', 'vcores': [...], 'regions': [line...],
    'memory_regions': [{'region', 'hpa_start', 'hpa_end', 'node', 'gpa', 'flags'}...]}}."""
    result = {}
    current = None
    for line in text.split('\n'):
        if line.startswith('Entry:'):
            match = _ENTRY_RE.match(line)
            if not match or int(match.group(1)) >= MAX_VMS or int(match.group(1)) in result:
                raise V3veeError('Cannot parse v3-guests-details line %r: expected "Entry: <slot>", each slot once, '
                                 'below %d.' % (line, MAX_VMS))
            current = {'slot': int(match.group(1)), 'vcores': [], 'regions': [], 'memory_regions': []}
            result[current['slot']] = current
        elif current is None:
            continue
        elif line.startswith('Name:'):
            current['name'] = line[len(_NAME_PREFIX):] if line.startswith(_NAME_PREFIX) else line[5:].strip(' ')
        elif line.startswith('State:'):
            current['state'] = line.split(':', 1)[1].strip()
        elif line.startswith('Type:'):
            current['type'] = line.split(':', 1)[1].strip()
        else:
            match = _VCORE_RE.match(line)
            if match:
                current['vcores'].append({
                    'vcore': int(match.group(1)), 'state': match.group(2),
                    'pcore': int(match.group(3)), 'exits': int(match.group(4)),
                    'rip': match.group(5), 'mode': match.group(6).split(),
                })
            elif line.strip().startswith('region '):
                current['regions'].append(line.strip())
                match = _REGION_RE.match(line)
                if match:
                    current['memory_regions'].append({
                        'region': int(match.group(1)), 'hpa_start': int(match.group(2), 16),
                        'hpa_end': int(match.group(3), 16), 'node': int(match.group(4)),
                        'gpa': int(match.group(5), 16), 'flags': match.group(6).split(),
                    })
    return result


_INFO_KEYS = {
    'kernel MAX_ORDER:': 'max_order',
    'number of nodes:': 'nodes',
    'number of cpus:': 'cpus',
    'palacios compiled mem_block_size:': 'compiled_block_size',
    'palacios run-time mem_block_size:': 'runtime_block_size',
}
_CPU_NODE_RE = re.compile(r'^cpu ([0-9]{1,5}) -> node ([0-9]{1,5})$')
_INFO_VALUE_RE = re.compile(r'^[0-9]{1,20}$')
# key -> (lowest, highest) the kernel can print; block sizes are 64-bit (2**64-1: an unparsable option).
_INFO_RANGES = {'max_order': (1, MAX_ORDER_LIMIT), 'nodes': (1, MAX_NODES), 'cpus': (1, MAX_CPUS)}


def parse_info(text):
    """Parse v3-info (note the space before the TAB in the cpus line)."""
    info = {'cpu_to_node': {}}
    for line in text.split('\n'):
        stripped = line.strip()
        for prefix, key in _INFO_KEYS.items():
            if line.startswith(prefix):
                value = line[len(prefix):].strip()
                low, high = _INFO_RANGES.get(key, (0, 2 ** 64 - 1))
                if not _INFO_VALUE_RE.match(value) or not low <= int(value) <= high:
                    raise V3veeError('Cannot parse v3-info line %r: expected a number from %d to %d.'
                                     % (line, low, high))
                info[key] = int(value)
        match = _CPU_NODE_RE.match(stripped)
        if match:
            info['cpu_to_node'][int(match.group(1))] = int(match.group(2))
    missing = [key for key in _INFO_KEYS.values() if key not in info]
    if missing:
        raise V3veeError('v3-info lacks %s: is this a Palacios /proc/v3vee?' % ', '.join(missing))
    wrong = ['cpu %d -> node %d' % item for item in sorted(info['cpu_to_node'].items())
             if item[0] >= info['cpus'] or item[1] >= info['nodes']]
    if wrong:
        raise V3veeError('v3-info maps %s, beyond its %d cpus and %d nodes.' % (', '.join(wrong[:4]), info['cpus'],
                                                                                info['nodes']))
    return info


_POOL_RE = re.compile(r'Base Addr=(?:0x)?([0-9a-fA-F]{1,16}), order=([0-9]{1,2}), size=([0-9]{1,20}), free=([0-9]{1,20})')
_ZONE_RE = re.compile(r'Zone Max Order=([0-9]{1,2}), Min Order=([0-9]{1,2})')
_FREE_LIST_RE = re.compile(r'^\s*order\s+([0-9]{1,2}): ([0-9]{1,20}) free blocks')


def parse_mem(text):
    """Parse one v3-mem<node> buddy dump into {'max_order', 'min_order', 'pools': [Pool],
    'free_lists': {order: free block count}} (orders are log2 of bytes: 12 = one page)."""
    zone = {'pools': [], 'free_lists': {}}
    for line in text.split('\n'):
        match = _ZONE_RE.search(line)
        if match:
            zone['max_order'], zone['min_order'] = int(match.group(1)), int(match.group(2))
            continue
        match = _FREE_LIST_RE.match(line)
        if match:
            zone['free_lists'][int(match.group(1))] = int(match.group(2))
            continue
        match = _POOL_RE.search(line)
        if match:
            zone['pools'].append(Pool(int(match.group(1), 16), int(match.group(2)),
                                      int(match.group(3)), int(match.group(4))))
        elif 'Base Addr=' in line:
            # A pool line we cannot read would make the reserved memory look smaller than it is.
            raise V3veeError('Cannot parse the v3-mem pool line %r. Is this a Palacios /proc/v3vee?' % line)
    # Orders are log2 of bytes: past 63 no 64-bit kernel prints them (and 1 << order would not fit).
    orders = list(zone['free_lists']) + [p.order for p in zone['pools']] + [zone.get('max_order', 0)]
    if max(orders) > MAX_ORDER_LIMIT:
        raise V3veeError('v3-mem shows a buddy order of %d, beyond %d. Is this a Palacios /proc/v3vee?'
                         % (max(orders), MAX_ORDER_LIMIT))
    zone['pools'].sort(key=lambda p: p.base)
    return zone


def allocation_size(block_size):
    """Bytes one guest memory region really takes from a pool: the buddy allocator hands out
    power-of-two blocks (get_order rounds the run-time block size up), so a 3 MB block size
    costs 4 MB per region."""
    size = 4096
    while size < block_size:
        size <<= 1
    return size


def free_blocks(zones, block_size):
    """How many guest memory regions (of the run-time block size) the pools can still give.

    Guest RAM is allocated in base regions of the run-time block size, each one buddy block of
    allocation_size(block_size), from any pool of any node (mm.c falls back to every node; the 4 MB
    seed pool included: it can only help when the block size is 2 MB or less), and every pool is
    a power-of-two buddy zone, so equal-sized allocations never fragment: a pool gives
    free // allocation_size regions. v3_create past this count crashes the kernel (observed 14).
    """
    if not block_size:
        return 0
    unit = allocation_size(block_size)
    return sum(p.free // unit for zone in zones.values() for p in zone['pools'])


def blocks_needed(mem_bytes, block_size):
    return -(-mem_bytes // block_size)


def vms_fitting(zones, block_size, mem_bytes):
    """How many more VMs of mem_bytes the pools can hold: the rule v3vee_vm's preflight applies
    to one VM (blocks_needed <= free_blocks), applied repeatedly."""
    if not block_size or mem_bytes <= 0:
        return 0
    return free_blocks(zones, block_size) // blocks_needed(mem_bytes, block_size)


def largest_free_block(zone):
    """Bytes of the largest block the zone's buddy allocator can hand out now (its highest
    non-empty free list), or None when the dump has no free-list lines."""
    lists = zone.get('free_lists')
    if not lists:
        return None
    orders = [order for order, count in lists.items() if count > 0]
    return (1 << max(orders)) if orders else 0


class Snapshot(object):
    """What one read of /proc/v3vee showed. Each file is read at most once per snapshot."""

    def __init__(self, loaded, guests=None, info=None, zones=None, details=None):
        self.loaded = loaded
        self.guests = guests or []
        self.info = info
        self.zones = zones or {}
        self.details = details

    def by_slot(self, index):
        for entry in self.guests:
            if entry.index == index:
                return entry
        return None

    def by_name(self, name):
        return [entry for entry in self.guests if entry.name == name]

    def broken(self):
        return [entry for entry in self.guests if is_broken(entry)]

    def free_slots(self):
        # Broken slots count as used: the kernel never hands them out again before a reboot.
        used = set(entry.index for entry in self.guests)
        return [i for i in range(MAX_VMS) if i not in used]

    @property
    def block_size(self):
        return self.info['runtime_block_size'] if self.info else None

    def free_blocks(self):
        return free_blocks(self.zones, self.block_size)


class ProcReader(object):
    """Reads /proc/v3vee (or a simulator's tree). A missing v3-info means the module is not loaded."""

    def __init__(self, proc_dir):
        self.proc_dir = proc_dir

    def path(self, name):
        return os.path.join(self.proc_dir, name)

    def _read(self, name):
        with open(self.path(name), 'rb') as handle:
            # Names are raw bytes in the kernel; keep undecodable bytes round-trippable.
            return handle.read().decode('utf-8', 'surrogateescape')

    def module_loaded(self):
        return os.path.exists(self.path('v3-info'))

    def snapshot(self, memory=False, details=False):
        if not self.module_loaded():
            return Snapshot(False)
        try:
            info = parse_info(self._read('v3-info'))
            guests = parse_guests(self._read('v3-guests'))
            zones = {}
            if memory:
                for node in range(info['nodes']):
                    name = 'v3-mem%d' % node
                    if os.path.exists(self.path(name)):
                        zones[node] = parse_mem(self._read(name))
            parsed_details = parse_guests_details(self._read('v3-guests-details')) if details else None
        except (IOError, OSError) as exc:
            # The module was unloaded between our existence check and the read.
            if not self.module_loaded():
                return Snapshot(False)
            raise V3veeError('Cannot read %s: %s' % (self.proc_dir, exc))
        return Snapshot(True, guests, info, zones, parsed_details)

    def guests(self):
        """Just the VM list: what verification re-reads after every step."""
        if not self.module_loaded():
            return []
        try:
            return parse_guests(self._read('v3-guests'))
        except (IOError, OSError):
            return []
