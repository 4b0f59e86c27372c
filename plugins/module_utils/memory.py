# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Palacios memory reservation: a pure planner (zones + v3-info + target -> v3_mem argv lists)
and an executor that runs each call and verifies it in v3-mem<N>, because v3_mem's exit
codes lie (interface spec 4.2, observed 6-7, gotchas 12-14).

Rules the planner enforces before anything runs:
* one `v3_mem -a` call adds one pool; its size must lie between the run-time and the compiled
  block size (the tool refuses smaller, the kernel rejects larger), so every chunk is exactly
  the run-time block size (at least the tool's 256 KB minimum);
* with `-k` the kernel must hand out the chunk in one piece: order < MAX_ORDER, i.e. at most
  4096 * 2**(MAX_ORDER-1) bytes (4 MB with MAX_ORDER 11; v3_mem's own check is one order too
  generous), so method kernel needs the module loaded with a small mem_block_size;
* reserved memory per node = sum of its pools - one seed pool (the 4 MB pool insmod allocates
  cannot be told apart by its line);
* shrinking releases only pools that are entirely free (free == size): never memory a VM uses,
  never the seed (Palacios itself uses part of it, observed 7).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import os
import re

from ansible_collections.v3vee.palacios.plugins.module_utils.common import V3veeError
from ansible_collections.v3vee.palacios.plugins.module_utils.proc import SEED_POOL_SIZE
from ansible_collections.v3vee.palacios.plugins.module_utils.tools import ToolTimeout, tool_error

MiB = 1024 * 1024
PAGE_SIZE = 4096
MIN_ALLOC = 64 * PAGE_SIZE      # v3_mem.c: the smallest -a request the tool accepts
METHODS = ('hotremove', 'kernel')
OFFLINE_FILE = '.v3offlinedmem'
# One run makes at most this many v3_mem calls (a 4 MB chunk each is 256 GB): a target past it fails
# before anything runs, instead of planning without bound.
MAX_PLAN_STEPS = 65536
# A size in MB as YAML or a template gives it, or a NUMA node number (ASCII digits only).
_MB_RE = re.compile(r'^[0-9]{1,15}(?:\.[0-9]{1,6})?$')
_NODE_RE = re.compile(r'^[0-9]{1,4}$')
_BLOCK_RE = re.compile(r'^memory([0-9]{1,9})$')
_HEX_RE = re.compile(r'^(?:0x)?[0-9a-fA-F]{1,16}$')


def kernel_max_chunk(max_order):
    """Largest block alloc_pages can return: order MAX_ORDER-1."""
    return PAGE_SIZE << (max_order - 1)


def format_mb(size):
    """Bytes -> the MB argument of v3_mem -a (parsed with atof, so fractions are fine)."""
    if size % MiB == 0:
        return '%d' % (size // MiB)
    return ('%.6f' % (float(size) / MiB)).rstrip('0')


def pool_dict(pool):
    return {'base': '0x%x' % pool.base if pool.base is not None else None, 'order': pool.order,
            'size': pool.size, 'free': pool.free}


def reserved_bytes(pools):
    """Reserved memory of one node: every pool but the seed."""
    if not pools:
        return 0
    return max(0, sum(p.size for p in pools) - SEED_POOL_SIZE)


def presumed_seed(pools):
    """The pool taken for the node's seed: of the 4 MB pools, the most used one (Palacios uses part of
    the real seed, observed 7), lowest address on ties. It is never released nor counted as reserved."""
    seeds = [p for p in pools if p.size == SEED_POOL_SIZE]
    if not seeds:
        return None
    return min(seeds, key=lambda p: (p.free, p.base))


def chunk_size(info, method):
    """The size of every -a chunk, or V3veeError naming the module option that would fix it."""
    runtime = info['runtime_block_size']
    compiled = info['compiled_block_size']
    chunk = max(runtime, MIN_ALLOC)
    if runtime > compiled:
        raise V3veeError(
            'The run-time block size (%d bytes, module option mem_block_size) is larger than the compiled '
            'block size (%d bytes): the kernel rejects every pool larger than the compiled block size, so no '
            'v3_mem -a chunk can be accepted. Reload the module with options="mem_block_size=<n>" where n is a '
            'power of two no larger than %d.' % (runtime, compiled, compiled))
    if chunk % PAGE_SIZE or (chunk // PAGE_SIZE) & (chunk // PAGE_SIZE - 1):
        raise V3veeError(
            'The run-time block size %d bytes is not a power-of-two number of pages; the kernel would round '
            'each v3_mem -a chunk and the pools would not match. Reload the module with '
            'options="mem_block_size=<power of two>".' % runtime)
    if method == 'kernel':
        largest = kernel_max_chunk(info['max_order'])
        if chunk > largest:
            raise V3veeError(
                'method kernel needs the module loaded with options mem_block_size=%d (or smaller): the run-time '
                'block size is %d bytes, but the kernel allocates at most %d bytes in one piece (MAX_ORDER %d), '
                'so v3_mem -k -a %s would be refused. Use method hotremove, or reload the module '
                '(v3vee.palacios.palacios_module) with that option.'
                % (largest, runtime, largest, info['max_order'], format_mb(chunk)))
    return chunk


def read_memory_blocks(sys_dir):
    """Linux's hot-pluggable memory blocks under <sys_dir>/devices/system/memory, the ones v3_mem's
    hot-remove offlines: {'block_size': bytes, 'blocks': [(number, node, online, removable)]} in
    block order, or None when the kernel shows none (no memory hotplug)."""
    base = os.path.join(sys_dir or '/sys', 'devices', 'system', 'memory')

    def read(*parts):
        with open(os.path.join(base, *parts), 'r') as handle:
            return handle.read().strip()

    try:
        block_size = int(read('block_size_bytes'), 16)
        names = os.listdir(base)
    except (IOError, OSError, ValueError):
        return None
    if block_size <= 0 or block_size >= 2 ** 64:
        return None
    blocks = []
    for name in names:
        match = _BLOCK_RE.match(name)
        if not match:
            continue
        try:
            state, removable = read(name, 'state'), read(name, 'removable')
            nodes = [int(e[4:]) for e in os.listdir(os.path.join(base, name)) if _NODE_RE.match(e[4:]) and e[:4] == 'node']
        except (IOError, OSError, UnicodeDecodeError):
            continue
        blocks.append((int(match.group(1)), nodes[0] if nodes else 0, state == 'online', removable == '1'))
    return {'block_size': block_size, 'blocks': sorted(blocks)}


def chunk_capacity(sysmem, chunk, method, below_4g, nodes):
    """How many more chunks each node can give, as v3_mem would find them.

    hotremove: a chunk takes ceil(chunk / block size) consecutive blocks that are online and
    removable (v3_mem.c offline_memory; with -l only the first 4 GB of blocks, counted by directory
    index as the tool does). kernel: at most the node's online memory; the kernel may refuse sooner
    (fragmentation, its own needs), which the run then reports."""
    per_chunk = max(1, -(-chunk // sysmem['block_size']))
    limit = 0xFFFFFFFF // sysmem['block_size']
    capacity = dict((node, 0) for node in range(nodes))
    run, run_node, previous = 0, None, None
    for index, (number, node, online, removable) in enumerate(sysmem['blocks']):
        if method == 'kernel':
            if node in capacity and online:
                capacity[node] += sysmem['block_size'] // chunk
            continue
        usable = node in capacity and online and removable and not (below_4g and index > limit)
        # A run is consecutive block numbers of one node (v3_mem -n: other nodes' blocks do not count).
        if not usable or node != run_node or previous is None or number != previous + 1:
            run = 0
        previous, run_node = number, node
        if usable:
            run += 1
            if run == per_chunk:
                capacity[node] += 1
                run = 0
    return capacity


def add_argv(chunk, method, below_4g, node, multi_node):
    argv = []
    if method == 'kernel':
        argv.append('-k')
    if below_4g:
        argv.append('-l')
    if multi_node:
        argv += ['-n', str(node)]
    return argv + ['-a', format_mb(chunk)]


def _mb(value):
    """A size in MB (a number, or a decimal string as templating gives it) -> bytes, or None if it is none."""
    if isinstance(value, str) and _MB_RE.match(value.strip()):
        value = float(value) if '.' in value else int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return int(value * MiB)


def normalize_target(target, nodes):
    """target -> ('node', {node: bytes}) or ('total', bytes). Input MB: {'total': n} or {'per_node': {node: n}}."""
    if target.get('total') is not None:
        size = _mb(target['total'])
        if size is None:
            raise V3veeError('total_mb must be a number of MB >= 0 (got %r).' % (target['total'],))
        return 'total', size
    per_node = {}
    for key, mb in target['per_node'].items():
        if isinstance(key, bool) or not (isinstance(key, int) or _NODE_RE.match('%s' % key)):
            raise V3veeError('per_node keys must be NUMA node numbers, got %r.' % (key,))
        node = int(key)
        if node < 0 or node >= nodes:
            raise V3veeError('NUMA node %d does not exist: v3-info reports %d node(s) (0..%d).'
                             % (node, nodes, nodes - 1))
        size = _mb(mb)
        if size is None:
            raise V3veeError('The reservation for node %d must be a number of MB >= 0 (got %r).' % (node, mb))
        per_node[node] = size
    return 'node', per_node


def plan_memory(zones, info, target, sysmem, method='hotremove', below_4g=False):
    """Plan the v3_mem calls that bring the reservation to target.

    zones: {node: {'pools': [Pool]}} (ProcReader.snapshot(memory=True).zones); info: parse_info();
    target: {'total': MB} or {'per_node': {node: MB}} (nodes not named are left alone);
    sysmem: read_memory_blocks() (None: the kernel shows no memory blocks).

    Growing adds chunks until each target is met (so the reservation ends within one chunk above
    it). A total target on a multi-node host is spread by giving each chunk to the node with the
    least reserved memory (lowest node on ties) that can still give one, with -n so the result
    is predictable. What each node can still give (chunk_capacity) bounds growth: a target
    beyond it fails before anything runs, saying how much can be reached.
    Shrinking releases entirely free pools, highest address first, as long as what stays reserved
    is still at least the target; memory a VM uses is never touched, and a target that needs
    it fails with the list of pools in use.

    Returns {'steps': [{'op': 'add'|'release', 'node', 'argv', 'size', 'base'}],
             'reserved_before': {node: bytes}, 'reserved_after': {node: bytes}}.
    """
    if method not in METHODS:
        raise V3veeError('method must be one of %s (got %r).' % (', '.join(METHODS), method))
    nodes = info['nodes']
    multi_node = nodes > 1
    kind, wanted = normalize_target(target, nodes)
    pools = dict((node, list(zones.get(node, {}).get('pools', []))) for node in range(nodes))
    reserved = dict((node, reserved_bytes(pools[node])) for node in range(nodes))
    seeds = dict((node, presumed_seed(pools[node])) for node in range(nodes))
    before = dict(reserved)
    if kind == 'total':
        grow = wanted > sum(reserved.values())
        groups = [(list(range(nodes)), wanted)]
    else:
        grow = any(wanted[node] > reserved[node] for node in wanted)
        groups = [([node], wanted[node]) for node in sorted(wanted)]

    steps = []
    chunk = chunk_size(info, method) if grow else None
    left = None
    if grow:
        if sysmem is None and method == 'hotremove':
            raise V3veeError('Hot-remove offlines Linux\'s memory blocks, and this host shows none under '
                             '<sys_dir>/devices/system/memory (a kernel without memory hotplug, or V3VEE_SYS_DIR in '
                             'the host settings file points elsewhere). Use method kernel.')
        if sysmem is not None:  # v3_mem -k does not read sysfs: without it the kernel alone bounds it
            left = chunk_capacity(sysmem, chunk, method, below_4g, nodes)
            check_reachable(kind, groups, reserved, chunk, left, method)
    for group, goal in groups:
        def have():
            return sum(reserved[n] for n in group)
        if chunk and goal - have() > (MAX_PLAN_STEPS - len(steps)) * chunk:
            raise V3veeError('Reserving %s MB would take more than %d v3_mem calls of %s MB (the run-time block size) '
                             'in one run. Nothing was run. Reserve less per run, or load the module with a larger '
                             'mem_block_size.' % (format_mb(goal), MAX_PLAN_STEPS, format_mb(chunk)))
        while have() < goal:
            node = min((n for n in group if left is None or left[n] > 0), key=lambda n: (reserved[n], n))
            if left is not None:
                left[node] -= 1
            steps.append({'op': 'add', 'node': node, 'size': chunk, 'base': None,
                          'argv': add_argv(chunk, method, below_4g, node, multi_node)})
            reserved[node] += chunk
        others = [(p, n) for n in group for p in pools[n] if p is not seeds[n]]
        releasable = sorted(((p, n) for p, n in others if p.free == p.size),
                            key=lambda item: item[0].base, reverse=True)
        for pool, node in releasable:
            if have() - pool.size >= goal:
                steps.append({'op': 'release', 'node': node, 'size': pool.size, 'base': pool.base,
                              'argv': ['-r', '0x%x' % pool.base]})
                reserved[node] -= pool.size
        released = set(s['base'] for s in steps if s['op'] == 'release')
        in_use = [(p, n) for p, n in others if p.free != p.size and p.base not in released]
        blocking = [(p, n) for p, n in in_use if have() - p.size >= goal]
        if blocking:
            raise V3veeError(
                'Cannot shrink the reservation of %s to %s: %s MB stays reserved because these pools are in use '
                '(by VMs, or by Palacios itself) and are never released: %s. Free or stop the VMs using them first '
                '(v3vee.palacios.v3vee_vm state=inactive/absent).'
                % ('node %d' % group[0] if kind == 'node' else 'all nodes', format_mb(goal) + ' MB',
                   format_mb(have()), ', '.join('node %d base 0x%x size %d free %d' % (n, p.base, p.size, p.free)
                                                for p, n in in_use)),
                observed={'pools': dict((n, [pool_dict(p) for p in pools[n]]) for n in group)})
    return {'steps': steps, 'reserved_before': before, 'reserved_after': reserved}


def check_reachable(kind, groups, reserved, chunk, capacity, method):
    """Refuse a growth target the host cannot reach, before the first v3_mem (which would otherwise
    offline what it can and then fail half-way)."""
    for group, goal in groups:
        reachable = sum(reserved[n] + capacity.get(n, 0) * chunk for n in group)
        if goal <= reachable:
            continue
        where = 'node %d' % group[0] if kind == 'node' else 'in total'
        can = ', '.join('node %d %s MB more (%d chunk(s) of %s MB)' % (n, format_mb(capacity.get(n, 0) * chunk),
                                                                       capacity.get(n, 0), format_mb(chunk))
                        for n in group)
        source = ('online, removable memory blocks (/sys/devices/system/memory) that v3_mem can offline'
                  if method == 'hotremove' else 'online memory the kernel could hand out')
        raise V3veeError(
            'Cannot reserve %s MB %s: %s MB is reserved now and the host can give at most %s MB (%s; from its %s), '
            'so at most %s MB can be reached. Nothing was run. Ask for %s MB or less.'
            % (format_mb(goal), where, format_mb(sum(reserved[n] for n in group)), format_mb(reachable - sum(
                reserved[n] for n in group)), can, source, format_mb(reachable), format_mb(reachable)),
            observed={'reserved_mb': format_mb(sum(reserved[n] for n in group)), 'reachable_mb': format_mb(reachable)})


def group_steps(steps):
    """Consecutive identical v3_mem -a calls as one entry with a count: the result stays small
    whatever the number of chunks (a release names its pool, so it stays one entry)."""
    grouped = []
    for step in steps:
        last = grouped[-1] if grouped else None
        if step['op'] == 'add' and last is not None and last['op'] == 'add' and last['argv'] == step['argv']:
            last['count'] += 1
            continue
        entry = dict(step, count=1)
        if step['op'] == 'add':
            entry.pop('base')
        grouped.append(entry)
    return grouped


def predict_pools(zones, steps, nodes):
    """Pools per node after the steps (check mode); a new pool's base is unknown (None)."""
    out = {}
    for node in range(nodes):
        current = [pool_dict(p) for p in zones.get(node, {}).get('pools', [])]
        for step in steps:
            if step['node'] != node:
                continue
            if step['op'] == 'release':
                current = [p for p in current if p['base'] != '0x%x' % step['base']]
            else:
                order = step['size'].bit_length() - 1
                current.append({'base': None, 'order': order, 'size': step['size'], 'free': step['size']})
        out[node] = current
    return out


def parse_offline_file(text):
    """$PALACIOS_DIR/.v3offlinedmem: one "%llx\\t%llx" (base, length) line per hot-removed range."""
    ranges = []
    for line in text.splitlines():
        fields = line.split()
        # 64-bit values only: a longer hex number is no address, and would not even print in a message.
        if len(fields) == 2 and _HEX_RE.match(fields[0]) and _HEX_RE.match(fields[1]):
            ranges.append((int(fields[0], 16), int(fields[1], 16)))
    return ranges


def leaked_ranges(offline, zones):
    """Recorded offline ranges that back no Palacios pool: a hot-remove -a the kernel rejected
    (observed 6). The memory is offline and lost to both Linux and Palacios."""
    bases = set(p.base for zone in zones.values() for p in zone.get('pools', []))
    return [(base, length) for base, length in offline if base not in bases]


def leak_remedy(leaks, palacios_dir):
    ranges = ', '.join('0x%x (+%d MB)' % (base, length // MiB) for base, length in leaks)
    return ('Memory is offline but held by no Palacios pool (a hot-remove v3_mem -a the kernel rejected leaves '
            'it offline and recorded in %s): %s. v3_mem cannot release it (v3_mem -r offline reports "Request '
            'rejected by Palacios" for such a range and still exits 0). Remedy: write "online" to '
            '/sys/devices/system/memory/memory<N>/state for each block of the range, then delete its line from '
            '%s.' % (os.path.join(palacios_dir or '$PALACIOS_DIR', OFFLINE_FILE), ranges,
                     os.path.join(palacios_dir or '$PALACIOS_DIR', OFFLINE_FILE)))


def read_offline_file(palacios_dir):
    if not palacios_dir:
        return []
    try:
        with open(os.path.join(palacios_dir, OFFLINE_FILE), 'rb') as handle:
            return parse_offline_file(handle.read().decode('utf-8', 'replace'))
    except (IOError, OSError):
        return []


def pools_view(zones, nodes):
    return dict(('%d' % node, [pool_dict(p) for p in zones.get(node, {}).get('pools', [])]) for node in range(nodes))


def mb_view(reserved):
    return dict(('%d' % node, size // MiB if size % MiB == 0 else float(size) / MiB)
                for node, size in sorted(reserved.items()))


NOT_LOADED = ('The Palacios module is not loaded (no v3-info in %s): v3_mem needs it for every operation, even to '
              'release memory. Load it first (role v3vee.palacios.palacios_module, or v3sim load on a simulated host).')


class MemoryHost(object):
    """Observes the reservation, runs one planned v3_mem call at a time and verifies it in v3-mem<N>."""

    def __init__(self, tools, reader, palacios_dir, timeout):
        self.tools = tools
        self.reader = reader
        self.palacios_dir = palacios_dir
        self.timeout = timeout  # each v3_mem run's deadline

    def observe(self):
        snap = self.reader.snapshot(memory=True)
        if not snap.loaded:
            raise V3veeError(NOT_LOADED % self.reader.proc_dir)
        return snap.info, snap.zones

    def leaks(self, zones):
        return leaked_ranges(read_offline_file(self.palacios_dir), zones)

    def execute(self, step, leaks_before):
        _info, before = self.observe()
        try:
            result = self.tools.run('v3_mem', step['argv'], self.timeout)
        except ToolTimeout as err:
            _info, after = self.observe()
            node = step['node']
            err.found('v3-mem%d lists %s' % (node, ', '.join(
                '0x%x (%d MB, %d MB free)' % (p.base, p.size // MiB, p.free // MiB)
                for p in after.get(node, {}).get('pools', [])) or 'no pool'), pools_view(after, len(after) or 1))
            raise
        _info, after = self.observe()
        node = step['node']
        old = set(p.base for p in before.get(node, {}).get('pools', []))
        now = after.get(node, {}).get('pools', [])
        if step['op'] == 'release':
            if any(p.base == step['base'] for p in now):
                raise tool_error('v3_mem -r 0x%x did not release the pool on node %d (exit %s): it is still listed in '
                                 'v3-mem%d. The kernel refuses to remove a pool a VM uses.'
                                 % (step['base'], node, result.rc, node), result,
                                 observed=pools_view(after, len(after) or 1), hint='dmesg | grep palacios tells why.')
            return step
        new = [p for p in now if p.base not in old]
        if new:
            step['base'] = new[0].base
            return step
        text = result.stdout + result.stderr
        leaks = [r for r in self.leaks(after) if r not in leaks_before]
        if leaks:
            msg = ('v3_mem %s was rejected by Palacios (exit %s) and no pool was added. %s'
                   % (' '.join(step['argv']), result.rc, leak_remedy(leaks, self.palacios_dir)))
        elif 'Could not find enough consecutive memory blocks' in text or 'Could not offline memory' in text:
            msg = ('Not enough removable memory on node %d: v3_mem could not offline %s MB of consecutive hot-removable '
                   'memory blocks. Reserve less, or use method kernel (with a small mem_block_size).'
                   % (node, format_mb(step['size'])))
        elif 'Please set the PALACIOS_DIR' in text:
            msg = 'v3_mem needs PALACIOS_DIR: set palacios_dir (or PALACIOS_DIR in the host settings file).'
        else:
            msg = ('v3_mem %s added no pool to node %d (exit %s; its exit code does not tell, v3-mem%d does).'
                   % (' '.join(step['argv']), node, result.rc, node))
        raise tool_error(msg, result, observed=pools_view(after, len(after) or 1),
                         hint='dmesg | grep palacios tells why.')
