#!/usr/bin/env python
"""v3sim -- a simulated Palacios (V3VEE) host.

One stdlib-only program that behaves like the Palacios ``v3vee.ko`` kernel module and
its ``linux_usr/v3_*`` command-line tools, so that the v3vee.palacios collection can be
developed and tested without Palacios hardware (in the spirit of libvirt's test driver).

It dispatches on ``basename(argv[0])``:

* a real tool name (``v3_create``, ``v3_launch``, ``v3_mem``, ...) behaves exactly like
  that tool running against the real module: same argv syntax, same stdout/stderr split,
  same strings and exit codes -- including the ones that lie;
* ``v3sim`` gives the simulator-only controls (install, host, load/unload, reboot,
  faults, ...); ``v3sim --help`` lists them.

The simulated host lives under a *root* directory (``<root>/bin``, ``lib``, ``proc/v3vee``,
``dev``, ``state``, ``kmsg.log``), see roles/simulator/README.md.  The root is the parent of
the directory holding argv[0] (not resolving symlinks) unless ``V3VEE_SIM_ROOT`` is set.

Reference: docs/palacios-interface.md (the interface read from Palacios b8836aa7 and
observed on the real thing); its "Observed on real Palacios" items win.  Comments say which
Palacios rule a piece of code follows; section banners name the sections of that page they
implement (``spec 2.1`` is section 2.1, ``observed 6`` item 6 of "Observed on real Palacios").
"""

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
import signal
import struct
import sys
import time

# socket, subprocess, resource and xml.parsers.expat are imported where they are used:
# every tool run is a fresh process, so start-up time matters.

# --------------------------------------------------------------------------------------
# Constants (Palacios / Linux facts)
# --------------------------------------------------------------------------------------

TOOLS = ("v3_create", "v3_free", "v3_launch", "v3_stop", "v3_pause", "v3_continue",
         "v3_reset", "v3_mem", "v3_mem_reset", "v3_save", "v3_load", "v3_send",
         "v3_receive", "v3_stream")
CONTROL = "v3sim"

MiB, GiB = 1 << 20, 1 << 30
U64 = (1 << 64) - 1
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
MAX_VMS = 32                      # linux_module/palacios.h
NAME_MAX = 127                    # strncpy(name, argv, 127) into char[128]
KERNEL_MAX_ORDER = 11             # Linux MAX_ORDER on x86_64 of that era
SEED_ORDER = KERNEL_MAX_ORDER - 1 + PAGE_SHIFT   # 4 MiB seed pool per node (order 22)
SEED_INTERNAL_ORDER = 15          # Palacios' own 32 KiB allocation: observed free=4161536
PALACIOS_MIN_ALLOC = 64 * 4096    # v3_mem.c
SYSFS_BLOCK = 128 * MiB           # /sys/devices/system/memory/block_size_bytes (simulated)
LOW_RAM_TOP = 2 * GiB             # simulated PCI hole 2-4 GiB (q35-like): RAM resumes at 4 GiB
HIGH_RAM_START = 4 * GiB
KERNEL_TOP_RESERVED = 12 * MiB    # top of each node's first RAM range holds kernel data
EXITS_PER_SECOND = 2000           # simulated VM exits per running vcore per second
BIOS_RESET_RIP = 0xFFF0           # observed rip right after create

# palacios vmm_types.h run states (the numbers appear in dmesg as "(state=%d)").
VM_INVALID, VM_RUNNING, VM_STOPPED, VM_PAUSED, VM_ERROR, VM_SIMULATING, VM_RESETTING = range(7)
STATE_NAMES = {VM_INVALID: "INVALID", VM_RUNNING: "running", VM_STOPPED: "stopped",
               VM_PAUSED: "paused", VM_ERROR: "ERROR", VM_SIMULATING: "simulating"}
# v3-guests has no name for 'resetting' (it prints UNKNOWN); v3-guests-details does (observed).
DETAIL_STATE_NAMES = dict(STATE_NAMES)
DETAIL_STATE_NAMES[VM_RESETTING] = "resetting"
# Observed: UNKNOWN for about 150 ms after v3_reset ... all (tests may stretch the window).
RESET_SECONDS = float(os.environ.get("V3VEE_SIM_RESET_SECONDS", "0.15"))
GHOST_LINE = "<unable to get data for this VM>"
STREAM_BUFFER = 4096              # observed: bytes the kernel keeps while no client is connected
FEATURES = ("checkpoint", "migration")
RULE = "-" * 87

DEFAULT_HOST = {"cpus": 4, "nodes": 1, "memory_mb": 4096, "compiled_block_size": 128 * MiB,
                "features": [], "migration_stream": "broken",
                "boot": {"load": False, "cpu_list": None, "allow_devmem": None, "options": None}}


class KernelOops(Exception):
    """The kernel crashed inside an ioctl (observed: v3_create without pool memory oopses in
    v3_deinit_core_extensions while cleaning up the failed VM); args[0]: dmesg lines before it."""


class HostHang(Exception):
    """The simulated host hangs (sim.kernel["hung"] says why): the tool never returns and
    every later tool run fails until 'v3sim reboot'."""


class ToolExit(Exception):
    """Raised to end a tool run with an exit status (like returning from main)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


# --------------------------------------------------------------------------------------
# C stdio emulation
# --------------------------------------------------------------------------------------

class CStdio:
    """stdout/stderr with the semantics of C stdio in the real tools.

    stdout is line buffered on a terminal and fully buffered (BUFSIZ) otherwise; the
    buffer is flushed at exit and *lost* when the process dies by a signal -- which is
    why ``v3_create -b missing.xml`` prints nothing into a pipe (observed).  stderr is
    unbuffered, so in a merged pipe stderr lines come before the buffered stdout ones.
    """

    BUFSIZ = 4096

    def __init__(self):
        self.buf = bytearray()
        self.tty = os.isatty(1)

    @staticmethod
    def _bytes(text):
        return text if isinstance(text, (bytes, bytearray)) else os.fsencode(text)

    @staticmethod
    def _write(fd, data):
        while data:
            try:
                written = os.write(fd, data)
            except OSError:
                return
            data = data[written:]

    def out(self, text):
        self.buf += self._bytes(text)
        if self.tty:
            cut = self.buf.rfind(b"\n") + 1
        else:
            cut = len(self.buf) - len(self.buf) % self.BUFSIZ
        if cut:
            self._write(1, bytes(self.buf[:cut]))
            del self.buf[:cut]

    def err(self, text):
        self._write(2, self._bytes(text))

    def flush(self):
        if self.buf:
            self._write(1, bytes(self.buf))
            self.buf.clear()


IO = CStdio()


def die_by_signal(signum=signal.SIGSEGV):
    """Die by the signal like the real tool (a NULL dereference, or a kernel oops during an
    ioctl): the stdout buffer is lost unless flushed first."""
    import resource
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    if signum != signal.SIGKILL:                  # SIGKILL cannot be caught anyway
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(5)
    os._exit(128 + signum)


# --------------------------------------------------------------------------------------
# C library parsing helpers (strtol, atoi, atof, getopt) -- the tools' loose parsing
# --------------------------------------------------------------------------------------

_C_SPACE = " \t\n\v\f\r"


def c_strtol(text, base=0, bits=64, signed=True):
    """strtol/strtoll/strtoull semantics: returns (value, rest)."""
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    neg = False
    if i < n and text[i] in "+-":
        neg = text[i] == "-"
        i += 1
    hexdigits = "0123456789abcdefABCDEF"
    if base in (0, 16) and text[i:i + 2] in ("0x", "0X") and i + 2 < n and text[i + 2] in hexdigits:
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if text[i:i + 1] == "0" else 10
    start, value = i, 0
    while i < n:
        digit = "0123456789abcdefghijklmnopqrstuvwxyz".find(text[i].lower())
        if digit < 0 or digit >= base:
            break
        value = value * base + digit
        i += 1
    if i == start:
        return 0, text
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        value = -value if neg else value
        value = max(lo, min(hi, value))
    else:
        value = min(value, (1 << bits) - 1)
        if neg:
            value = (-value) & ((1 << bits) - 1)
    return value, text[i:]


def c_atoi(text):
    """atoi(): leading decimal integer, 32-bit wrap like the int the C code stores."""
    if text is None:
        return 0
    value = c_strtol(text, 10, bits=64)[0]
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


_ATOF_RE = re.compile(
    r"[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])")


def c_atof(text):
    """atof(): the longest numeric prefix (decimal, hex float, inf, nan), else 0.0."""
    match = _ATOF_RE.match(text.lstrip(_C_SPACE))
    if not match:
        return 0.0
    chunk = match.group(0)
    body = chunk.lstrip("+-")
    if body[:2] in ("0x", "0X"):
        if "p" not in body.lower():
            chunk += "p0"
        return float.fromhex(chunk)
    return float(chunk)


def double_to_ull(value):
    """(unsigned long long)double as gcc does it on x86_64 (UB made deterministic)."""
    if math.isnan(value):                   # NaN -> cvttsd2si "integer indefinite"
        return 1 << 63
    if value >= float(1 << 64):
        return 1 << 63
    if value >= float(1 << 63):
        return int(value)
    if value <= -float(1 << 63):
        return 1 << 63
    return int(value) & U64


def kstrtoull(text):
    """Linux kstrtoull(s, 0): whole string (one trailing newline allowed) or None."""
    s = text[:-1] if text.endswith("\n") else text
    if s.startswith("+"):
        s = s[1:]
    if s[:2] in ("0x", "0X"):
        base, digits = 16, s[2:]
    elif s.startswith("0") and len(s) > 1:
        base, digits = 8, s[1:]
    else:
        base, digits = 10, s
    if not digits:
        return None
    try:
        value = int(digits, base)
    except ValueError:
        return None
    if not all(c.isalnum() for c in digits) or value > U64:
        return None
    return value


def gnu_getopt(args, optstring):
    """GNU getopt(3) with argument permutation.

    Yields ``(opt, optarg)`` in order; errors are yielded as ``("?", (optopt, kind))`` with
    kind ``"unknown"`` or ``"missing"``.  Non-options are collected into the list returned
    by ``StopIteration.value`` (use :func:`getopt_all`).
    """
    positionals = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positionals.extend(args[i + 1:])
            break
        if not arg.startswith("-") or arg == "-":
            positionals.append(arg)
            i += 1
            continue
        j = 1
        while j < len(arg):
            ch = arg[j]
            pos = optstring.find(ch) if ch != ":" else -1
            if pos < 0:
                yield "?", (ch, "unknown")
                j += 1
                continue
            if optstring[pos + 1:pos + 2] == ":":
                if j + 1 < len(arg):
                    yield ch, arg[j + 1:]
                elif i + 1 < len(args):
                    i += 1
                    yield ch, args[i]
                else:
                    yield "?", (ch, "missing")
                break
            yield ch, None
            j += 1
        i += 1
    return positionals


def getopt_all(args, optstring):
    """Run :func:`gnu_getopt` to the end: (list of (opt, arg)), positionals."""
    gen = gnu_getopt(args, optstring)
    opts = []
    while True:
        try:
            opts.append(next(gen))
        except StopIteration as stop:
            return opts, stop.value


# --------------------------------------------------------------------------------------
# Small file helpers
# --------------------------------------------------------------------------------------

def atomic_write(path, data, mode=0o644, tmpdir=None):
    """Write a file atomically: temp file in tmpdir (same filesystem) + rename."""
    if isinstance(data, str):
        data = os.fsencode(data)
    directory = tmpdir or os.path.dirname(path)
    tmp = os.path.join(directory, ".v3sim-%d-%s" % (os.getpid(), os.urandom(6).hex()))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path, default):
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default
    except ValueError:
        return default


def dump_json(obj):
    # ensure_ascii keeps lone surrogates (non-UTF-8 VM names) round-trippable.
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def hexp(addr):
    """printk %p of a physical address on Linux < 4.2: 16 zero-padded hex digits."""
    return "%016x" % (addr & U64)


def get_order(size):
    """Linux get_order(size): smallest order with PAGE_SIZE << order >= size."""
    pages = max(1, -(-size // PAGE_SIZE))
    return max(0, (pages - 1).bit_length())


def v3_hash_buffer(data):
    """palacios vmm_hashtable.c v3_hash_buffer (ELF-style hash, 64-bit unsigned long)."""
    h = 0
    for i, byte in enumerate(data):
        h = ((h << 4) + byte + i) & U64
        top = h & 0xF0000000
        if top:
            h ^= top >> 24
        h &= ~top & U64
    return h


# --------------------------------------------------------------------------------------
# Simulated hardware: NUMA nodes, RAM ranges, sysfs memory blocks
# --------------------------------------------------------------------------------------

def node_ranges(host):
    """Physical RAM ranges per node: nodes laid out in order, RAM below 2 GiB then from 4 GiB."""
    ranges, cursor = [], 0
    for _node in range(host["nodes"]):
        need, mine = host["memory_mb"] * MiB, []
        while need:
            if cursor < LOW_RAM_TOP:
                take = min(need, LOW_RAM_TOP - cursor)
            else:
                cursor = max(cursor, HIGH_RAM_START)
                take = need
            mine.append((cursor, cursor + take))
            cursor += take
            need -= take
        ranges.append(mine)
    return ranges


def addr_to_node(host, addr):
    for node, rngs in enumerate(node_ranges(host)):
        if any(start <= addr < end for start, end in rngs):
            return node
    return -1


def memory_blocks(host):
    """[(block number, node)] for every simulated /sys/devices/system/memory/memoryN."""
    blocks = []
    for node, rngs in enumerate(node_ranges(host)):
        for start, end in rngs:
            blocks.extend((b, node) for b in range(start // SYSFS_BLOCK, end // SYSFS_BLOCK))
    return sorted(blocks)


def seed_addr(host, node):
    """Where the 4 MiB seed pool of a node lands: 12 MiB below the end of its first range
    (0x7f400000 on node 0 of a >= 2 GiB host, as observed)."""
    return node_ranges(host)[node][0][1] - KERNEL_TOP_RESERVED


def kernel_reserved(host):
    """Address ranges the simulated Linux kernel itself occupies (never offlineable)."""
    regions = [(0, SYSFS_BLOCK)]          # block 0: kernel image, low/DMA memory
    for node in range(host["nodes"]):
        top = node_ranges(host)[node][0][1]
        regions.append((top - KERNEL_TOP_RESERVED, top))   # seed pool + other kernel data
    return regions


def validate_host(host):
    problems = []
    if not 1 <= host["cpus"] <= 64:
        problems.append("--cpus must be between 1 and 64")
    if not 1 <= host["nodes"] <= 8:
        problems.append("--nodes must be between 1 and 8")
    if host["nodes"] > host["cpus"]:
        problems.append("--nodes cannot exceed --cpus")
    if host["memory_mb"] < 512 or host["memory_mb"] % 128:
        problems.append("--memory-mb must be a multiple of 128 and at least 512")
    cbs = host["compiled_block_size"]
    if cbs < 4 * MiB or cbs > 64 * GiB or cbs & (cbs - 1):
        problems.append("--compiled-block-size must be a power of two between 4 MiB and 64 GiB")
    for feat in host["features"]:
        if feat not in FEATURES:
            problems.append("unknown feature %r (known: %s)" % (feat, ", ".join(FEATURES)))
    if "migration" in host["features"] and "checkpoint" not in host["features"]:
        problems.append("feature 'migration' needs 'checkpoint' (LIVE_MIGRATION depends on CHECKPOINT)")
    if host["migration_stream"] not in MIGRATION_STREAMS:
        problems.append("--migration-stream must be one of %s" % ", ".join(MIGRATION_STREAMS))
    return problems


def cpu_node(host, cpu):
    """CPUs are split evenly across nodes in ascending order."""
    return cpu * host["nodes"] // host["cpus"]


# --------------------------------------------------------------------------------------
# The simulated host: state files, lock, kernel log, /proc and /dev
# --------------------------------------------------------------------------------------

def fresh_kernel(boot_count=1):
    """Linux kernel state right after a (simulated) boot."""
    return {"boot_time": time.time(), "boot_count": boot_count, "offline_blocks": [],
            "module": None}


class Sim:
    """One simulated Palacios host rooted at ``root``."""

    def __init__(self, root):
        self.root = root
        self.bin_dir = os.path.join(root, "bin")
        self.lib_dir = os.path.join(root, "lib")
        self.state_dir = os.path.join(root, "state")
        self.tmp_dir = os.path.join(self.state_dir, "tmp")
        self.proc_dir = os.path.join(root, "proc", "v3vee")
        self.dev_dir = os.path.join(root, "dev")
        self.sys_dir = os.path.join(root, "sys")
        self.kmsg_path = os.path.join(root, "kmsg.log")
        self.boot_dir = os.path.join(root, "boot.d")
        self.host = None
        self.kernel = None
        self.faults = None
        self.target = None      # (slot, name of the VM there) once this tool run reached a VM

    # ---- state -------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, write=True):
        """Hold the host lock for a whole read-modify-write (flock on state/lock).

        With ``write=False`` (status, --check) a host without a state directory is read as
        the defaults and nothing is created."""
        lock = os.path.join(self.state_dir, "lock")
        if not write and not os.path.exists(lock):
            self.load()
            yield self
            return
        os.makedirs(self.tmp_dir, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            self.load()
            if write:
                finish_resets(self)   # persisted by the caller's commit, if it commits
            yield self
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def load(self):
        host = read_json(os.path.join(self.state_dir, "host.json"), None) or {}
        merged = json.loads(json.dumps(DEFAULT_HOST))
        merged.update({k: v for k, v in host.items() if k != "boot"})
        merged["boot"].update(host.get("boot", {}))
        self.host = merged
        self.kernel = read_json(os.path.join(self.state_dir, "kernel.json"), None) or fresh_kernel()
        self.faults = read_json(os.path.join(self.state_dir, "faults.json"), {})

    def save_state(self):
        for name, obj in (("host.json", self.host), ("kernel.json", self.kernel),
                          ("faults.json", self.faults)):
            atomic_write(os.path.join(self.state_dir, name), dump_json(obj), tmpdir=self.tmp_dir)

    def commit(self):
        """Persist state, then make /proc/v3vee and /dev match it (atomic rewrites)."""
        self.save_state()
        self.sync_proc()
        self.sync_dev()
        self.sync_sys()

    @property
    def module(self):
        return self.kernel["module"]

    # ---- kernel log ----------------------------------------------------------------

    def klog(self, msg, vm=None, pcore=0, raw=False):
        """Append one dmesg-style line: ``[%12.6f] palacios (pcore N[ vm NAME]): msg``."""
        stamp = max(0.0, time.time() - self.kernel["boot_time"])
        if raw:
            line = "[%12.6f] %s" % (stamp, msg)
        elif vm is not None:
            line = "[%12.6f] palacios (pcore %d vm %s): %s" % (stamp, pcore, vm, msg)
        else:
            line = "[%12.6f] palacios (pcore %d): %s" % (stamp, pcore, msg)
        fd = os.open(self.kmsg_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, os.fsencode(line + "\n"))
        finally:
            os.close(fd)

    # ---- faults --------------------------------------------------------------------

    def take_fault(self, tool, kinds):
        """Consume one pending fault of ``kinds`` for ``tool`` (caller holds the lock); a fault
        added with ``--after K`` lets the first K runs that would take it pass."""
        queue = self.faults.get(tool) or []
        for fault in queue:
            if fault["kind"] in kinds:
                if fault.get("after"):
                    fault["after"] -= 1
                    self.save_state()
                    return None
                fault["count"] -= 1
                if fault["count"] <= 0:
                    queue.remove(fault)
                if not queue:
                    self.faults.pop(tool, None)
                self.save_state()
                return fault
        return None

    def note_target(self, slot):
        """Remember which VM this tool run reached (for ROOT/targets.log)."""
        vm = self.vm(slot)
        self.target = (slot, vm["name"] if vm else None)

    def kernel_refuses(self, tool, what):
        """An injected ``refuse`` fault: the kernel turns the operation down."""
        if self.take_fault(tool, ("refuse",)):
            self.klog("v3sim fault injection: refusing %s" % what)
            return True
        return False

    # ---- device nodes --------------------------------------------------------------

    def device(self, path):
        """What opening ``path`` O_RDONLY reaches: ("ctrl",), ("vm", slot), ("other",) or
        None when the open fails.  ``/dev/X`` means ``<root>/dev/X`` (simulator contract)."""
        full = os.path.abspath(path) if path else path
        if not full:
            return None
        if full == "/dev" or full.startswith("/dev/"):
            full = os.path.join(self.dev_dir, full[len("/dev/"):])
        try:
            fd = os.open(full, os.O_RDONLY)
            os.close(fd)
        except OSError:
            return None
        real = os.path.realpath(full)
        if os.path.dirname(real) == os.path.realpath(self.dev_dir):
            base = os.path.basename(real)
            if base == "v3vee":
                return ("ctrl",)
            if base.startswith("v3-vm") and base[5:].isdigit():
                slot = int(base[5:])
                if self.module and str(slot) in self.module["vms"] and not self.vm(slot).get("ghost"):
                    return ("vm", slot)
        return ("other",)

    def sync_dev(self):
        os.makedirs(self.dev_dir, exist_ok=True)
        wanted = set()
        if self.module:
            wanted.add("v3vee")
            # A ghost slot's create died before its device was made.
            wanted.update("v3-vm%s" % slot for slot, vm in self.module["vms"].items() if not vm.get("ghost"))
        for name in os.listdir(self.dev_dir):
            if (name == "v3vee" or name.startswith("v3-vm")) and name not in wanted:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.dev_dir, name))
        for name in wanted:
            path = os.path.join(self.dev_dir, name)
            if not os.path.exists(path):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                os.fchmod(fd, 0o600)
                os.close(fd)

    # ---- /sys/devices/system/memory ---------------------------------------------------

    def sync_sys(self):
        """The simulated hardware's sysfs memory blocks, as Linux shows them and v3_mem reads them:
        block_size_bytes (hex, no 0x), memoryN/state (online/offline), memoryN/removable (1/0),
        memoryN/phys_index, and memoryN/nodeK -> ../../node/nodeK.  Files are rewritten only when
        their content changes, so a tool run costs a read of each."""
        memory = os.path.join(self.sys_dir, "devices", "system", "memory")
        nodes = os.path.join(self.sys_dir, "devices", "system", "node")
        offline = set(self.kernel["offline_blocks"])
        blocks = dict(memory_blocks(self.host))
        files = {os.path.join(memory, "block_size_bytes"): "%x\n" % SYSFS_BLOCK}
        for num, node in blocks.items():
            block = os.path.join(memory, "memory%d" % num)
            files[os.path.join(block, "state")] = "offline\n" if num in offline else "online\n"
            files[os.path.join(block, "removable")] = "1\n" if block_removable(self, num) else "0\n"
            files[os.path.join(block, "phys_index")] = "%08x\n" % num
        for node in range(self.host["nodes"]):
            os.makedirs(os.path.join(nodes, "node%d" % node), exist_ok=True)
        if os.path.isdir(memory):
            for name in os.listdir(memory):
                if name.startswith("memory") and name[6:].isdigit() and int(name[6:]) not in blocks:
                    shutil.rmtree(os.path.join(memory, name), ignore_errors=True)
        for path, text in files.items():
            try:
                with open(path, "r", encoding="ascii") as fh:
                    if fh.read() == text:
                        continue
            except OSError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, text, mode=0o444, tmpdir=self.tmp_dir)
        for num, node in blocks.items():
            link = os.path.join(memory, "memory%d" % num, "node%d" % node)
            if not os.path.islink(link):
                for name in os.listdir(os.path.dirname(link)):
                    if name.startswith("node"):
                        os.unlink(os.path.join(os.path.dirname(link), name))
                os.symlink("../../node/node%d" % node, link)

    # ---- /proc/v3vee ---------------------------------------------------------------

    def sync_proc(self):
        if not self.module:
            if os.path.isdir(self.proc_dir):
                for name in os.listdir(self.proc_dir):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.proc_dir, name))
                with contextlib.suppress(OSError):
                    os.rmdir(self.proc_dir)
            return
        os.makedirs(self.proc_dir, exist_ok=True)
        files = {"v3-guests-details": render_details(self), "v3-info": render_info(self)}
        for zone in self.module["zones"]:
            files["v3-mem%d" % zone["node"]] = render_mem(zone)
        # v3-guests last: whoever sees a new state there (the file states are read from) then
        # finds the details and pools at least as new. Each file is replaced atomically, the
        # set is not (nor are two reads of the real /proc files).
        files["v3-guests"] = render_guests(self)
        for name in os.listdir(self.proc_dir):
            if name not in files:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.proc_dir, name))
        for name, text in files.items():
            atomic_write(os.path.join(self.proc_dir, name), text, mode=0o444, tmpdir=self.tmp_dir)

    # ---- convenience -----------------------------------------------------------------

    def runtime_block(self):
        return self.module["runtime_block"]

    def vm(self, slot):
        return self.module["vms"].get(str(slot))


# --------------------------------------------------------------------------------------
# /proc renderers (linux_module/main.c, buddy.c) -- byte-exact layouts (spec 2.1-2.5)
# --------------------------------------------------------------------------------------

def vm_regions(vm):
    return len(vm["regions"])


def vcore_now(core):
    """Exits and rip of a vcore at this instant: a running vcore accrues exits and its
    rip wanders through the BIOS; a stopped or paused one is frozen."""
    if core.get("run_since") is None:
        return core["exits"], core["rip"]
    exits = core["exits"] + max(0, int((time.time() - core["run_since"]) * EXITS_PER_SECOND))
    if exits == core["exits"]:
        return exits, core["rip"]
    return exits, 0xF0000 + ((exits * 2654435761) & 0xFFFF)


def freeze_vcores(vm):
    for core in vm["vcores"]:
        core["exits"], core["rip"] = vcore_now(core)
        core["run_since"] = None


def halt_vm(vm, state):
    """The vcores stop (stop, failed load/receive, vcore failure): VM state ``state``."""
    freeze_vcores(vm)
    for core in vm["vcores"]:
        core["state"] = "stopped"
    vm["state"] = state


def ghost_read(sim, vm):
    """A read of a ghost slot (the VM whose create crashed the kernel): the state query fails
    and dmesg says so on every read (observed).  /proc is rewritten, not read, by the
    simulator, so the lines come once per rewrite."""
    sim.klog("Invalid request to v3_get_state_sizes", vm=vm["name"])
    sim.klog("Cannot get VM info")


def render_guests(sim):
    lines = []
    for slot in sorted(sim.module["vms"], key=int):
        vm = sim.module["vms"][slot]
        if vm.get("ghost"):
            ghost_read(sim, vm)
            lines.append("%s\t/dev/v3-vm%s\t%s\n" % (vm["name"], slot, GHOST_LINE))
            continue
        state = STATE_NAMES.get(vm["state"], "UNKNOWN")
        lines.append("%s\t/dev/v3-vm%s\t%s\t%d vcores\t%d regions\t%d mem\t%s\n" % (
            vm["name"], slot, state, len(vm["vcores"]), vm_regions(vm), vm["mem_bytes"], "general"))
    return "".join(lines)


def render_details(sim):
    out = []
    for slot in sorted(sim.module["vms"], key=int):
        vm = sim.module["vms"][slot]
        state = DETAIL_STATE_NAMES.get(vm["state"], "UNKNOWN")
        out.append(RULE + "\n")
        out.append("Entry:        %s\n" % slot)
        out.append("Name:         %s\n" % vm["name"])
        out.append("Device:       /dev/v3-vm%s\n" % slot)
        if vm.get("ghost"):
            ghost_read(sim, vm)
            out.append(GHOST_LINE + "\n" + RULE + "\n")
            continue
        ncores, nregions = len(vm["vcores"]), vm_regions(vm)
        out.append("Type:         general\n")
        out.append("State:        %s\n" % state)
        out.append("Cores:        %d (%d shown)\n" % (ncores, min(ncores, 1024)))
        out.append("Regions:      %d (%d shown)\n" % (nregions, min(nregions, 1024)))
        out.append("Memsize:      %d (%d ROS)\n" % (vm["mem_bytes"], vm["mem_bytes"]))
        out.append("\nCore States\n")
        for idx, core in enumerate(vm["vcores"][:1024]):
            exits, rip = vcore_now(core)
            out.append("   vcore %d %s on pcore %d %d exits rip=0x%s %s %s %s \n" % (
                idx, core["state"], core["pcore"], exits, hexp(rip), core["cpu_mode"],
                core["mem_mode"], core["paging"]))
        out.append("\nMemory Regions\n")
        block = vm["region_size"]
        for idx, (hpa, node) in enumerate(vm["regions"][:1024]):
            out.append("   region %d has HPAs 0x%016x-0x%016x (node %d) GPA 0x%016x  \n" % (
                idx, hpa, hpa + block, node, idx * block))
        out.append(RULE + "\n")
    return "".join(out)


def render_info(sim):
    host = sim.host
    cpus, nodes = host["cpus"], host["nodes"]
    out = ["kernel MAX_ORDER:\t%d\n" % KERNEL_MAX_ORDER,
           "number of nodes:\t%d\n" % nodes,
           "number of cpus: \t%d\n" % cpus,
           "\n",
           "palacios compiled mem_block_size:\t%d\n" % host["compiled_block_size"],
           "palacios run-time mem_block_size:\t%d\n" % sim.module["runtime_block"],
           "\n",
           "CPU to node mappings\n"]
    out.extend("cpu %d -> node %d\n" % (c, cpu_node(host, c)) for c in range(cpus))
    out.append("\nNode to node distances\n")

    def table(count, dist):
        rows = ["".join("   \t%2d" % c for c in range(count)) + "\n"]
        for r in range(count):
            rows.append("%2d " % r + "".join("\t%2d" % dist(r, c) for c in range(count)) + "\n")
        return rows

    def node_dist(a, b):
        return 10 if a == b else 20  # ACPI SLIT local/remote

    out.extend(table(nodes, node_dist))
    out.append("\nCPU to CPU distances\n")
    out.extend(table(cpus, lambda a, b: node_dist(cpu_node(host, a), cpu_node(host, b))))
    return "".join(out)


def render_mem(zone):
    out = ["DUMP OF BUDDY MEMORY ZONE:\n",
           "  Zone Max Order=%d, Min Order=%d\n" % (zone["max_order"], PAGE_SHIFT)]
    for order in range(PAGE_SHIFT, zone["max_order"] + 1):
        out.append("  order %2d: %d free blocks\n" % (order, len(zone["free"][str(order)])))
    out.append(" %d memory pools\n" % len(zone["pools"]))
    for pool in sorted(zone["pools"], key=lambda p: p["base"]):
        out.append("    Base Addr=%s, order=%d, size=%d, free=%d\n" % (
            hexp(pool["base"]), pool["order"], 1 << pool["order"], pool_free(zone, pool)))
    return "".join(out)


# --------------------------------------------------------------------------------------
# Palacios buddy allocator (linux_module/buddy.c): one zone per NUMA node (spec 2.4, 4.1)
# --------------------------------------------------------------------------------------

def new_zone(node, compiled_block_size):
    max_order = get_order(compiled_block_size) + PAGE_SHIFT
    return {"node": node, "max_order": max_order, "pools": [],
            "free": {str(o): [] for o in range(PAGE_SHIFT, max_order + 1)}}


def find_pool(zone, addr):
    for pool in zone["pools"]:
        if pool["base"] <= addr < pool["base"] + (1 << pool["order"]):
            return pool
    return None


def pool_free(zone, pool):
    end = pool["base"] + (1 << pool["order"])
    return sum(1 << int(order) for order, addrs in zone["free"].items()
               for a in addrs if pool["base"] <= a < end)


def buddy_add_pool(sim, zone, base, order, kind, meta=None):
    if order > zone["max_order"]:
        sim.klog("Pool order size is larger than max allowable zone size (pool_order=%d) "
                 "(max_order=%d)" % (order, zone["max_order"]))
        return False
    if order < PAGE_SHIFT:
        sim.klog("Pool order is smaller than min allowable zone size (pool_order=%d) "
                 "(min_order=%d)" % (order, PAGE_SHIFT))
        return False
    end = base + (1 << order)
    for pool in zone["pools"]:
        if base < pool["base"] + (1 << pool["order"]) and pool["base"] < end:
            sim.klog("Error: Could not insert mempool into zone")
            return False
    zone["pools"].append({"base": base, "order": order, "kind": kind, "meta": meta or {}})
    zone["free"][str(order)].insert(0, base)      # list_add: new free block at the head
    return True


def buddy_alloc(zone, order):
    """First block of the smallest sufficient order (free lists are LIFO), split down.

    One free list per zone covers every pool, the seed pool included (linux_module/buddy.c):
    with a run-time block of 2 MiB or less the seed's free half can hold a guest region."""
    order = max(order, PAGE_SHIFT)
    for j in range(order, zone["max_order"] + 1):
        lst = zone["free"][str(j)]
        if lst:
            addr = lst.pop(0)
            while j > order:
                j -= 1
                zone["free"][str(j)].insert(0, addr + (1 << j))
            return addr
    return None


def buddy_free(sim, zone, addr, order):
    pool = find_pool(zone, addr)
    if pool is None or order > pool["order"]:
        sim.klog("Attempted to free an invalid page address (%s) - pool=%s order=%d"
                 % (hexp(addr), hexp(0), order))
        return
    while order < pool["order"]:
        buddy = pool["base"] + ((addr - pool["base"]) ^ (1 << order))
        lst = zone["free"][str(order)]
        if buddy not in lst:
            break
        lst.remove(buddy)
        addr = min(addr, buddy)
        order += 1
    zone["free"][str(order)].insert(0, addr)


def buddy_remove_pool(sim, zone, addr):
    """Unforced removal: the pool's whole top-order block must be free."""
    pool = find_pool(zone, addr)
    if pool is None:
        sim.klog("Could not find mempool with base address (%s)" % hexp(addr))
        return None
    top = zone["free"][str(pool["order"])]
    if pool["base"] not in top:
        sim.klog("Trying to remove an in use memory pool")
        return None
    top.remove(pool["base"])
    zone["pools"].remove(pool)
    return pool


def zone_of(sim, node):
    for zone in sim.module["zones"]:
        if zone["node"] == node:
            return zone
    return None


# --------------------------------------------------------------------------------------
# Simulated Linux: memory hot-remove state and kernel page allocation
# --------------------------------------------------------------------------------------

def kernel_pool_ranges(sim):
    ranges = []
    if sim.module:
        for zone in sim.module["zones"]:
            for pool in zone["pools"]:
                if pool["kind"] in ("REQUESTED", "REQUESTED32"):
                    ranges.append((pool["base"], pool["base"] + (1 << pool["order"])))
    return ranges


def block_removable(sim, block):
    """sysfs memoryN/removable: 0 for blocks holding kernel data (block 0, the top 12 MiB
    of each node's first range) or pages Palacios got from the kernel (v3_mem -k)."""
    start, end = block * SYSFS_BLOCK, (block + 1) * SYSFS_BLOCK
    for lo, hi in kernel_reserved(sim.host) + kernel_pool_ranges(sim):
        if lo < end and start < hi:
            return False
    return True


def kernel_alloc_pages(sim, node, order, dma32):
    """alloc_pages_node(): highest free naturally aligned chunk of the node (Linux cannot
    allocate order >= MAX_ORDER)."""
    if order >= KERNEL_MAX_ORDER:
        return None
    if node < 0:
        node = 0            # numa_mem_id() of the CPU running v3_mem: simulated as CPU 0
    if node >= sim.host["nodes"]:
        return None
    size = PAGE_SIZE << order
    busy = kernel_reserved(sim.host) + kernel_pool_ranges(sim)
    offline = set(sim.kernel["offline_blocks"])
    for start, end in reversed(node_ranges(sim.host)[node]):
        cand = (end - size) // size * size
        while cand >= start:
            ok = not (dma32 and cand + size > 1 << 32)
            ok = ok and not any(lo < cand + size and cand < hi for lo, hi in busy)
            blocks = range(cand // SYSFS_BLOCK, (cand + size - 1) // SYSFS_BLOCK + 1)
            ok = ok and not any(b in offline for b in blocks)
            if ok:
                return cand
            cand -= size
    return None


# --------------------------------------------------------------------------------------
# XML: an ezxml look-alike (linux_usr/ezxml.c for v3_create -b, vmm_xml.c in the kernel; spec 5.1-5.2)
# --------------------------------------------------------------------------------------

class XNode:
    """An element as ezxml sees it: name, ordered attributes, text, children, tail."""

    __slots__ = ("name", "attrs", "text", "tail", "children")

    def __init__(self, name, attrs):
        self.name, self.attrs = name, attrs
        self.text, self.tail, self.children = "", "", []

    def attr(self, key):
        for k, v in self.attrs:
            if k == key:
                return v
        return None

    def set_attr(self, key, value):
        """ezxml_set_attr_d: replace in place, else append."""
        for pair in self.attrs:
            if pair[0] == key:
                pair[1] = value
                return
        self.attrs.append([key, value])

    def child(self, name):
        return next((c for c in self.children if c.name == name), None)

    def children_named(self, name):
        return [c for c in self.children if c.name == name]

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


def xml_parse(data):
    """Parse XML bytes: (root XNode, None) or (None, ezxml-style error text).  Comments,
    processing instructions and text outside the root element are dropped, as ezxml does."""
    import xml.parsers.expat
    parser = xml.parsers.expat.ParserCreate()
    parser.ordered_attributes = True
    parser.buffer_text = True
    stack, holder = [], []

    def start(name, attrs):
        node = XNode(name, [[attrs[i], attrs[i + 1]] for i in range(0, len(attrs), 2)])
        if stack:
            stack[-1].children.append(node)
        else:
            holder.append(node)
        stack.append(node)

    def end(_name):
        stack.pop()

    def chars(text):
        if stack:
            cur = stack[-1]
            if cur.children:
                cur.children[-1].tail += text
            else:
                cur.text += text

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        return None, "[error near line %d]: %s" % (exc.lineno, xml.parsers.expat.ErrorString(exc.code))
    if not holder:
        return None, "[error near line 1]: root tag missing"
    return holder[0], None


def xml_amp(text, attr):
    """ezxml_ampencode."""
    table = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"}
    if attr:
        table.update({'"': "&quot;", "\n": "&#xA;", "\t": "&#x9;"})
    return "".join(table.get(c, c) for c in text)


def xml_serialize(node):
    """ezxml_toxml: double-quoted attributes, no self-closing tags, no declaration."""
    parts = ["<", node.name]
    for key, value in node.attrs:
        parts += [" ", key, '="', xml_amp(value, True), '"']
    parts += [">", xml_amp(node.text, False)]
    for child in node.children:
        parts += [xml_serialize(child), xml_amp(child.tail, False)]
    parts += ["</", node.name, ">"]
    return "".join(parts)


def user_get_val(node, tag):
    """linux_usr/v3_create.c get_val: (value, duplicate-error-text-or-None)."""
    attrib, child = node.attr(tag), node.child(tag)
    if attrib is not None and child is not None:
        return None, "Invalid Cfg file: Duplicate value for %s (attr=%s, txt=%s)\n" % (tag, attrib, child.text)
    return (attrib if attrib is not None else (child.text if child is not None else "")), None


def cfg_val(node, tag, errors=None):
    """palacios vmm_config.c v3_cfg_val: attribute or child text; "" means absent."""
    if node is None:
        return None
    attrib, child = node.attr(tag), node.child(tag)
    if attrib is not None and child is not None:
        if errors is not None:
            errors.append((False, "Duplicate Configuration parameters present for %s" % tag))
        return None
    if attrib is not None:
        return attrib
    text = child.text if child is not None else ""
    return text or None


# --------------------------------------------------------------------------------------
# Guest image format (linux_usr/v3_create.c build_image, vmm_config.c parse_config; spec 5.3-5.4)
# --------------------------------------------------------------------------------------

COOKIE_V0 = b"v3vee\0\0\0"
COOKIE_V1 = b"v3vee\0\0\1"


def pack_image(xml_bytes, blobs, pad_headers):
    """Version-1 image: cookie, u32 xml length, xml, 8 zero bytes, u64 file count,
    24-byte {u32 index; u32 size; u64 offset; u64 hash} per file, 8 zero bytes, data.
    ``pad_headers`` reproduces v3_create's over-allocation (128 bytes per file header,
    the excess being zero padding at the end) so the reported size matches the tool."""
    head = COOKIE_V1 + struct.pack("<I", len(xml_bytes)) + xml_bytes + b"\0" * 8
    head += struct.pack("<Q", len(blobs))
    offset = len(head) + 24 * len(blobs) + 8
    table = b""
    for index, blob in enumerate(blobs):
        table += struct.pack("<IIQQ", index, len(blob), offset, v3_hash_buffer(blob))
        offset += len(blob)
    image = head + table + b"\0" * 8 + b"".join(blobs)
    if pad_headers:
        image += b"\0" * ((128 - 24) * len(blobs))
    return image


def kernel_parse_image(img):
    """parse_config(): ({"root": XNode|None, "files": {...}}, []) or (None, [messages])."""
    if img[:8] == COOKIE_V0:
        version, hdr_size = 0, 16
    elif img[:8] == COOKIE_V1:
        version, hdr_size = 1, 24
    else:
        return None, ["Invalid Configuration Header Or Unknown Version"]
    if len(img) < 12:
        return None, ["v3sim: image truncated after the header"]
    (xml_len,) = struct.unpack_from("<I", img, 8)
    if 12 + xml_len + 16 > len(img):
        return None, ["v3sim: image XML length %d runs past the image end" % xml_len]
    xml_bytes = img[12:12 + xml_len].split(b"\0", 1)[0]
    root, _err = xml_parse(xml_bytes)      # the kernel does not check parse errors
    table = 12 + xml_len + 8
    (num_files,) = struct.unpack_from("<Q", img, table)
    files = {}
    for node in (root.child("files").children_named("file")
                 if root is not None and root.child("files") is not None else []):
        errors = []
        file_id = cfg_val(node, "id", errors) or ""
        idx = c_atoi(cfg_val(node, "index", errors))
        at = table + 8 + idx * hdr_size
        if idx < 0 or idx >= num_files or at + hdr_size > len(img):
            return None, ["v3sim: file index %d outside the image file table" % idx]
        _index, size, offset = struct.unpack_from("<IIQ", img, at)
        if offset + size > len(img):
            return None, ["v3sim: file %s data runs past the image end" % file_id]
        data = img[offset:offset + size]
        if version == 1:
            (want,) = struct.unpack_from("<Q", img, at + 16)
            got = v3_hash_buffer(data)
            if got != want:
                return None, ["File data corrupted! (orig hash=0x%x, new=0x%x" % (want, got)]
        files[file_id] = {"size": size}
    return {"root": root, "files": files, "version": version}, []


# --------------------------------------------------------------------------------------
# Kernel: VM lifecycle (linux_module/main.c + vm.c, vmm.c / vmm_config.c; spec 3, observed 1)
# --------------------------------------------------------------------------------------

def available_cpus(sim):
    return sim.module["cpus"]


def allocate_guest_memory(sim, vm_mem, block):
    """v3_init_mem_map: ceil(mem/block) base regions, each one buddy block of the run-time
    block size.  mm.c alloc_palacios_pgs (node -1): the zone of the CPU running v3_create
    (CPU 0) first, then every other zone in node order."""
    if vm_mem <= 0 or block <= 0:
        return None
    count = -(-vm_mem // block)
    order = get_order(block) + PAGE_SHIFT
    first = zone_of(sim, cpu_node(sim.host, 0))
    zones = [first] + [z for z in sim.module["zones"] if z is not first]
    if order > first["max_order"] or count > 1 << 20:
        return None
    got = []
    for _region in range(count):
        addr = None
        for zone in zones:
            addr = buddy_alloc(zone, order)
            if addr is not None:
                got.append((addr, zone))
                break
        if addr is None:
            for hpa, zone in got:
                buddy_free(sim, zone, hpa, order)
            return None
    return [[hpa, zone["node"]] for hpa, zone in got]


def configure_guest(sim, img, name):
    """v3_create_vm + v3_config_guest.  Returns (vm dict, []) or (None, [(scoped, msg)])."""
    cfg, msgs = kernel_parse_image(img)
    if cfg is None:
        return None, [(False, m) for m in msgs] + [(False, "Could not parse configuration")]
    root, errors = cfg["root"], []
    cores = root.child("cores") if root is not None else None
    if cores is None:
        return None, [(False, "Could not find core configuration (new config format required)")]
    ncores = c_atoi(cfg_val(cores, "count", errors))
    if ncores <= 0:      # 0 is the real check; negative counts are treated the same here
        return None, errors + [(False, "No cores specified in configuration")]
    if ncores > 1024:
        return None, errors + [(False, "Could not allocate %d core guest" % ncores)]
    mem_str = cfg_val(root, "memory", errors)
    if mem_str is None:
        return None, errors + [(False, "Memory is a required configuration parameter"),
                               (True, "Error in preconfiguration")]
    vm_class = cfg_val(root, "class", errors)
    if vm_class is None or vm_class.lower() != "pc":
        return None, errors + [(False, "Invalid VM class"), (True, "Error in preconfiguration")]
    mem_bytes = (c_atoi(mem_str) * MiB) & U64
    block = sim.runtime_block()
    regions = allocate_guest_memory(sim, mem_bytes, block)
    if regions is None:
        raise KernelOops(errors + [(True, "Could not allocate guest memory")])
    pg_mode = cfg_val(root.child("paging"), "mode", errors)
    paging = "shadow"
    if pg_mode is not None and pg_mode.lower() == "nested":
        paging = "nested"             # the simulated CPU has nested paging (SVM rev3 / EPT)
    elif pg_mode is not None and pg_mode.lower() != "shadow":
        errors.append((True, "Invalid paging mode (%s) specified in configuration. "
                             "Defaulting to shadow paging" % pg_mode))
    core_cfgs = cores.children_named("core")
    vcores = []
    for idx in range(ncores):
        target = cfg_val(core_cfgs[idx], "target_cpu") if idx < len(core_cfgs) else None
        vcores.append({"state": "stopped", "pcore": 0, "exits": 0, "rip": BIOS_RESET_RIP,
                       "cpu_mode": "real", "mem_mode": "physical", "paging": paging,
                       "target_cpu": target, "run_since": None})
    vm = {"name": name, "state": VM_STOPPED, "mem_bytes": mem_bytes, "regions": regions,
          "region_size": block, "region_order": get_order(block) + PAGE_SHIFT,
          "vcores": vcores, "image_size": len(img), "created": time.time(), "restored_from": None,
          "streams": config_streams(root), "devices": config_devices(root)}
    return vm, errors


def config_streams(root):
    """The named streams a VM offers v3_stream: its CHAR_STREAM devices (palacios
    devices/char_stream.c registers `name` with the host's stream interface at create)."""
    devices = root.child("devices")
    streams = {}
    for dev in devices.children_named("device") if devices is not None else []:
        if (dev.attr("class") or "").upper() == "CHAR_STREAM" and dev.attr("name"):
            streams[dev.attr("name")] = {"client": None, "buffer": ""}
    return streams


def kernel_create(sim, tool, img, name_arg):
    """ioctl 12 V3_CREATE_GUEST: returns the slot, or -1; raises KernelOops (after leaving a
    ghost in the slot) when no pool can hold the guest memory."""
    mod = sim.module
    slot = next((i for i in range(MAX_VMS) if str(i) not in mod["vms"]), None)
    if slot is None:
        sim.klog("Palacios Error: Too many VMs are currently running")
        return -1
    if sim.kernel_refuses(tool, "V3_CREATE_GUEST"):
        return -1
    sim.klog("Palacios: Creating V3 Guest...")
    name = os.fsdecode(os.fsencode(name_arg)[:NAME_MAX])
    try:
        vm, msgs = configure_guest(sim, img, name)
    except KernelOops as oops:
        for scoped, msg in oops.args[0]:
            sim.klog(msg, vm=name if scoped else None)
        # The slot was taken before the VM was built and is never given back: a ghost that
        # v3_free cannot remove; only a reboot clears it (observed).
        sim.klog("BUG: unable to handle kernel NULL pointer dereference at 0000000000000008", raw=True)
        sim.klog("IP: [<ffffffffa0412b3c>] v3_deinit_core_extensions+0x1c/0x60 [v3vee]", raw=True)
        sim.klog("Oops: 0000 [#1] SMP", raw=True)
        mod["vms"][str(slot)] = {"name": name, "ghost": True, "state": VM_INVALID, "vcores": [],
                                 "regions": [], "mem_bytes": 0, "created": time.time()}
        raise
    for scoped, msg in msgs:
        sim.klog(msg, vm=name if scoped else None)
    if vm is None:
        sim.klog("palacios: failed to create vm")
        sim.klog("Palacios: Error creating guest")
        return -1
    mod["vms"][str(slot)] = vm
    sim.note_target(slot)
    return slot


def kernel_free(sim, tool, idx):
    """ioctl 13 V3_FREE_GUEST (argument = index as unsigned long)."""
    signed = idx - (1 << 64) if idx >= 1 << 63 else idx
    if idx >= MAX_VMS:
        sim.klog("Invalid VM index: %d" % signed)
        return -1
    vm = sim.vm(idx)
    sim.note_target(idx)
    if vm is None:
        sim.klog("No VM at index %d" % signed)
        return -1
    if vm.get("ghost"):
        sim.klog("Asked to free nonexistent VM")
        return -1
    if sim.kernel_refuses(tool, "V3_FREE_GUEST"):
        return -1
    if vm["state"] not in (VM_STOPPED, VM_ERROR):
        sim.klog("Tried to Free VM in invalid runstate (%d)" % vm["state"], vm=vm["name"])
        sim.klog("Cannot free guest at index %d" % signed)
        return -1
    connected = [name for name, stream in vm.get("streams", {}).items() if stream_client_alive(stream)]
    if connected:
        # Observed: an oops in stream_poll/ringbuf_data_len, v3_free never returns, the host hangs.
        sim.klog("BUG: unable to handle kernel paging request", raw=True)
        sim.klog("IP: [<ffffffffa04219d2>] ringbuf_data_len+0x2/0x10 [v3vee]", raw=True)
        sim.klog("Call Trace: stream_poll+0x3c/0x80 [v3vee]", raw=True)
        sim.kernel["hung"] = ("v3_free of VM %d (%s) while a v3_stream client was connected to stream(s) %s"
                              % (idx, vm["name"], ", ".join(sorted(connected))))
        raise HostHang()
    release_vm(sim, idx)
    return 0


def release_vm(sim, slot):
    vm = sim.module["vms"].pop(str(slot))
    for hpa, node in vm["regions"]:
        zone = zone_of(sim, node)
        if zone is not None:
            buddy_free(sim, zone, hpa, vm["region_order"])


def map_vcores(sim, vm):
    """default_mapper_admit: highest vcore first onto the available CPUs in ascending
    order; an explicit target_cpu must be available.  Returns an error list or []."""
    avail = set(available_cpus(sim))
    i, vcore_id, pcores = 0, len(vm["vcores"]) - 1, {}
    while vcore_id >= 0 and i <= 64:
        target = vm["vcores"][vcore_id]["target_cpu"]
        core_idx = c_atoi(target) & 0xFFFFFFFF if target is not None else i
        if core_idx not in avail:
            errs = ["Logical CPU %d not available for virtual core %d; not started" % (core_idx, vcore_id)]
            if target is not None:
                return errs + ["CPU was specified explicitly (%d). HARD ERROR" % core_idx]
            i += 1
            continue
        pcores[vcore_id] = core_idx
        vcore_id -= 1
        if target is None:
            i += 1
    if vcore_id >= 0:
        return ["Attempted to start a VM with too many cores"]
    for idx, pcore in pcores.items():
        vm["vcores"][idx]["pcore"] = pcore
    return []


def kernel_launch(sim, tool, slot):
    """ioctl 25 V3_VM_LAUNCH: stopped -> running.  A VM stopped after running resumes
    (observed 1: new vcore threads continue where they stopped)."""
    vm = sim.vm(slot)
    if sim.kernel_refuses(tool, "V3_VM_LAUNCH"):
        return -1
    if vm["state"] != VM_STOPPED:
        sim.klog("VM has already been launched (state=%d)" % vm["state"], vm=vm["name"])
        return -1
    avail = available_cpus(sim)
    if len(vm["vcores"]) > len(avail):
        sim.klog("Attempted to start a VM with too many cores (vm->num_cores = %d, avail_cores = %d, "
                 "MAX=%d)" % (len(vm["vcores"]), len(avail), sim.host["cpus"]), vm=vm["name"])
        return -1
    errs = map_vcores(sim, vm)
    if errs:
        for msg in errs:
            sim.klog(msg, vm=vm["name"])
        return -1
    sim.klog("V3 --  Starting VM (%d cores)" % len(vm["vcores"]), vm=vm["name"])
    now = time.time()
    for idx, core in enumerate(vm["vcores"]):
        sim.klog("Starting virtual core %d on logical core %d" % (idx, core["pcore"]), vm=vm["name"])
        core["state"], core["run_since"] = "running", now
    vm["state"] = VM_RUNNING
    return 0


def kernel_stop(sim, tool, slot):
    """ioctl 26 V3_VM_STOP: running/simulating -> stopped; the handler always returns 0."""
    vm = sim.vm(slot)
    if sim.kernel_refuses(tool, "V3_VM_STOP"):
        return 0
    if vm["state"] not in (VM_RUNNING, VM_SIMULATING):
        sim.klog("Tried to stop VM in invalid runstate (%d)" % vm["state"], vm=vm["name"])
        return 0
    halt_vm(vm, VM_STOPPED)
    return 0


def kernel_pause(sim, tool, slot):
    """ioctl 23: running -> paused (vcores wait at a barrier, still 'running')."""
    vm = sim.vm(slot)
    if sim.kernel_refuses(tool, "V3_VM_PAUSE"):
        return 0
    if vm["state"] != VM_RUNNING:
        sim.klog("Tried to pause a VM that was not running", vm=vm["name"])
        return 0
    freeze_vcores(vm)
    vm["state"] = VM_PAUSED
    return 0


def kernel_continue(sim, tool, slot):
    """ioctl 24: paused -> running."""
    vm = sim.vm(slot)
    if sim.kernel_refuses(tool, "V3_VM_CONTINUE"):
        return 0
    if vm["state"] != VM_PAUSED:
        sim.klog("Tried to continue a VM that was not paused", vm=vm["name"])
        return 0
    now = time.time()
    for core in vm["vcores"]:
        core["run_since"] = now
    vm["state"] = VM_RUNNING
    return 0


def kernel_reset(sim, tool, slot, rtype, first, num):
    """ioctl 40 V3_VM_RESET: only a running VM; 'all' for general VMs (HVM is not
    simulated, so 'hrt'/'ros' are always refused); 'range' is not bounds-checked (observed:
    cores outside the VM are simply not there to reset).  The call returns at once and the
    VM stays 'resetting' (v3-guests: UNKNOWN) for RESET_SECONDS, see finish_resets."""
    vm = sim.vm(slot)
    if sim.kernel_refuses(tool, "V3_VM_RESET"):
        return -1
    if vm["state"] != VM_RUNNING:
        sim.klog("Attempt to reset VM in state %d (must be in running state)" % vm["state"], vm=vm["name"])
        return -1
    if rtype in ("hrt", "ros"):
        sim.klog("Cannot reset %s cores of a non-HVM VM" % rtype.upper(), vm=vm["name"])
        return -1
    ncores = len(vm["vcores"])
    cores = range(first, min(first + num, ncores)) if rtype == "range" else range(ncores)
    freeze_vcores(vm)
    for idx in cores:
        vm["vcores"][idx].update(state="resetting", rip=BIOS_RESET_RIP, cpu_mode="real", mem_mode="physical")
    vm["state"] = VM_RESETTING
    vm["reset_until"] = time.time() + RESET_SECONDS
    sim.klog("Resetting VM cores %d-%d" % (first, first + num - 1) if rtype == "range" else "Resetting VM",
             vm=vm["name"])
    return 0


def finish_resets(sim):
    """Resets whose time is up: the VM runs again from the reset vector (exit counts kept)."""
    if not sim.module:
        return False
    now, done = time.time(), False
    for vm in sim.module["vms"].values():
        if vm["state"] == VM_RESETTING and vm["reset_until"] <= now:
            for core in vm["vcores"]:
                # Held at the reset vector a moment, so a reader sees "running, rip=0xfff0" (observed).
                core.update(state="running", run_since=now + RESET_SECONDS)
            vm["state"] = VM_RUNNING
            vm.pop("reset_until")
            sim.klog("Reset of VM done", vm=vm["name"])
            done = True
    return done


def spawn_reset_finisher(sim):
    """A detached process that rewrites /proc when the reset is over (nothing else would:
    readers of /proc run no simulator code).  Its stdio is /dev/null so callers that wait
    for EOF on the tool's pipes are not held up."""
    IO.flush()
    if os.fork():
        return
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        time.sleep(RESET_SECONDS)
        while os.path.isdir(sim.state_dir):   # the host may be gone (a test's temp root)
            with sim.locked():                # finishes what is due (finish_resets)
                if not any(vm["state"] == VM_RESETTING for vm in (sim.module or {}).get("vms", {}).values()):
                    sim.commit()
                    break
            time.sleep(0.02)
    finally:
        os._exit(0)


# --------------------------------------------------------------------------------------
# Kernel: memory (linux_module/mm.c, buddy.c; spec 4.1-4.3, observed 6-7)
# --------------------------------------------------------------------------------------

REGION_TYPES = {0: "PREALLOCATED", 1: "REQUESTED", 2: "REQUESTED32"}


def kernel_add_memory(sim, tool, rtype, node, base, num_pages):
    """ioctl 50 V3_ADD_MEMORY -> 0 or -1."""
    if sim.kernel_refuses(tool, "V3_ADD_MEMORY"):
        return -1
    if num_pages * PAGE_SIZE < sim.host["compiled_block_size"]:
        sim.klog("Allocating a memory pool smaller than the Palacios block size - may not be useful")
    if num_pages & (num_pages - 1):
        # The message says "down"; the code rounds up (observed).
        sim.klog("Allocating a memory pool that is not a power of two - it will be rounded down!")
        num_pages = 1 << num_pages.bit_length()
    num_pages = max(num_pages, 1)
    kind = REGION_TYPES[rtype]
    page_order = num_pages.bit_length() - 1
    if kind != "PREALLOCATED":
        base = kernel_alloc_pages(sim, node, page_order, kind == "REQUESTED32")
        if base is None:
            sim.klog("Unable to satisfy allocation request")
            return -1
    owner = addr_to_node(sim.host, base)
    if owner < 0:
        sim.klog("Error locating node for addr %s" % hexp(base))
        return -1
    if not buddy_add_pool(sim, zone_of(sim, owner), base, page_order + PAGE_SHIFT, kind):
        sim.klog("ALERT ALERT ALERT Unable to add pool to buddy allocator...")
        return -1
    return 0


def kernel_remove_memory(sim, tool, addr):
    """ioctl 52 V3_REMOVE_MEMORY: remove the (wholly free) pool containing addr."""
    if sim.kernel_refuses(tool, "V3_REMOVE_MEMORY"):
        return -1
    node = addr_to_node(sim.host, addr)
    pool = buddy_remove_pool(sim, zone_of(sim, node), addr) if node >= 0 else None
    if node < 0:
        sim.klog("Could not find mempool with base address (%s)" % hexp(addr))
    if pool is None:
        sim.klog("Cannot remove memory at base address 0x%s because it is in use" % hexp(addr))
        sim.klog("Error removing memory from Palacios")
        return -1
    return 0


def kernel_reset_memory(sim, tool):
    """ioctl 51 V3_RESET_MEMORY: all zones destroyed (kernel pages freed, offlined memory
    left offline, VMs' memory pulled from under them), fresh seed pools."""
    if sim.kernel_refuses(tool, "V3_RESET_MEMORY"):
        return -1
    for zone in sim.module["zones"]:
        for pool in zone["pools"]:
            if pool_free(zone, pool) < 1 << pool["order"]:
                sim.klog("Forcefully removing in use memory pool")
    sim.module["zones"] = make_zones(sim)
    return 0


def make_zones(sim):
    zones = []
    for node in range(sim.host["nodes"]):
        zone = new_zone(node, sim.host["compiled_block_size"])
        sim.klog("Zone initialized, Adding seed region (order=%d)" % SEED_ORDER, raw=True)
        buddy_add_pool(sim, zone, seed_addr(sim.host, node), SEED_ORDER, "seed")
        buddy_alloc(zone, SEED_INTERNAL_ORDER)   # Palacios' own use
        zones.append(zone)
    return zones


# --------------------------------------------------------------------------------------
# Kernel: module load / unload (linux_module/main.c v3_init / v3_exit; spec 4.4, observed 8)
# --------------------------------------------------------------------------------------

def kstrtoint(text):
    """param_set_int / kstrtoint(s, 0): signed 32-bit or None."""
    neg = text.startswith("-")
    value = kstrtoull(text[1:] if neg else text)
    if value is None:
        return None
    value = -value if neg else value
    return value if -(1 << 31) <= value < (1 << 31) else None


def parse_module_options(raw):
    """palacios vmm_options.c: key=value pairs separated by spaces, TABs or commas; a
    bare key means "true"."""
    opts = {}
    for token in re.split(r"[\s,]+", raw or ""):
        if token:
            key, sep, value = token.partition("=")
            opts[key] = value if sep else "true"
    return opts


def module_load(sim, cpu_list, allow_devmem, options):
    """insmod v3vee.ko [cpu_list=..] [allow_devmem=..] [options=".."]: exit status."""
    if sim.module:
        IO.err("insmod: ERROR: could not insert module v3vee.ko: File exists\n")
        return 1
    cpus = []
    if cpu_list is not None:
        values = [kstrtoint(item) for item in cpu_list.split(",")] if cpu_list else []
        if any(v is None for v in values):
            sim.klog("v3vee: `%s' invalid for parameter `cpu_list'" % cpu_list, raw=True)
            IO.err("insmod: ERROR: could not insert module v3vee.ko: Invalid parameters\n")
            return 1
        cpus = values
    devmem = 0
    if allow_devmem is not None:
        devmem = kstrtoint(allow_devmem)
        if devmem is None:
            sim.klog("v3vee: `%s' invalid for parameter `allow_devmem'" % allow_devmem, raw=True)
            IO.err("insmod: ERROR: could not insert module v3vee.ko: Invalid parameters\n")
            return 1
    opts = parse_module_options(options)
    runtime = sim.host["compiled_block_size"]
    if "mem_block_size" in opts:
        # kstrtoull failure leaves -1 in the u64: v3-info then shows 18446744073709551615.
        parsed = kstrtoull(opts["mem_block_size"])
        runtime = U64 if parsed is None else parsed
    online = sim.host["cpus"]
    for cpu in cpus:
        if not 0 <= cpu < online:
            sim.klog("CPU %d in cpu_list is not online, ignoring it" % cpu)
    avail = sorted({c for c in cpus if 0 <= c < online}) or list(range(online))
    avail = [c for c in avail if c < 16]            # Palacios MAX_CPUS (Kconfig default 16)
    sim.kernel["module"] = {
        "params": {"cpu_list": cpu_list, "allow_devmem": allow_devmem, "options": options},
        "options": opts, "runtime_block": runtime, "cpus": avail, "allow_devmem": devmem,
        "zones": [], "vms": {}, "keyed_mem": {}, "loaded_at": time.time()}
    sim.module["zones"] = make_zones(sim)
    sim.klog("intializing V3 Control device")
    sim.klog("/proc/v3vee/v3-guests successfully created")
    return 0


def module_unload(sim):
    """rmmod v3vee: stop then free every VM (a paused VM cannot be stopped, so it cannot
    be freed: it is leaked), destroy the zones (kernel pages go back to Linux; offlined
    memory stays offline), remove /proc/v3vee and /dev/v3vee."""
    if not sim.module:
        IO.err("rmmod: ERROR: Module v3vee is not currently loaded\n")
        return 1
    if any(vm.get("ghost") for vm in sim.module["vms"].values()):
        # The crashed create holds a module reference that is never dropped: only a reboot helps.
        IO.err("rmmod: ERROR: Module v3vee is in use\n")
        return 1
    for slot in sorted(sim.module["vms"], key=int):
        vm = sim.vm(slot)
        if vm["state"] in (VM_RUNNING, VM_SIMULATING):
            halt_vm(vm, VM_STOPPED)
        else:
            sim.klog("Tried to stop VM in invalid runstate (%d)" % vm["state"], vm=vm["name"])
            sim.klog("Couldn't stop VM %s" % slot)
        if vm["state"] in (VM_STOPPED, VM_ERROR):
            release_vm(sim, slot)
        else:
            sim.klog("Tried to Free VM in invalid runstate (%d)" % vm["state"], vm=vm["name"])
    sim.klog("Removing V3 Control device")
    sim.kernel["module"] = None
    return 0


# --------------------------------------------------------------------------------------
# Kernel: checkpoint / migration (vmm_checkpoint.c), only when "built" with it (observed 11-12)
# --------------------------------------------------------------------------------------

CHKPT_IOCTL = {"v3_save": 28, "v3_load": 27, "v3_send": 34, "v3_receive": 35}
CHKPT_FEATURE = {"v3_save": "checkpoint", "v3_load": "checkpoint",
                 "v3_send": "migration", "v3_receive": "migration"}
CHKPT_SKIP_MEM, CHKPT_SKIP_DEVS, CHKPT_SKIP_CORES, CHKPT_SKIP_ARCH = 1, 2, 4, 8
NET_TIMEOUT = float(os.environ.get("V3VEE_SIM_NET_TIMEOUT", "600"))
# vmm_checkpoint.c svm_chkpt_header: the "header" context holds this string (47 bytes, observed 11).
CHKPT_HEADER = b"v3vee palacios checkpoint version: x.x, SVM x.x"
# memory_img (vmm_checkpoint.c save_memory): "region_size" (u64), "num_regions" (u32), then one
# "memory_img<i>" per region; the DIR store writes the data only: guest memory + 12 bytes (observed 11).
MEM_IMG_HEAD = struct.Struct("<QI")
# The file: keyed stream frames every tagged item (iface-keyed-stream.c BOUNDARY_TAG): u32 0xabcd0123,
# u64 tag length, tag, u64 data length, data. Observed on real Palacios: header 73 bytes (47 + 26),
# memory_img = guest memory + 105 bytes for one region.
KS_BOUNDARY = 0xabcd0123
KS_FRAME = struct.Struct("<IQ")
# guest_info<N>: what this simulator models of the vcore (rip, modes and "run_state": after a load
# the details show the saved run state, observed: "vcore 0 running on pcore 0 0 exits" in a VM that
# v3-guests shows stopped); the real context holds more, its size was not observed.  vmcb_data<N>: the SVM control block, one page.
GUEST_INFO = struct.Struct("<Q16s16s16s")
VMCB_SIZE = PAGE_SIZE
DEV_NAME_LEN = 32                  # vmm_dev_mgr.c: the "devices" context is a u32 count + 32-byte names
DEVICES_WITHOUT_SAVE = ("BOCHS_DEBUG",)
# Device errors that do not stop a load (observed 11), by device class.
LOAD_DEVICE_ERRORS = {"MPTABLE": "mptable.c(548): Cookie mismatch in saved mptable",
                      "i440FX": "i440fx.c(103): Error hooking i440FX io ports"}


def chkpt_location(store, url):
    """Resolve a store + url: ("dir", path) | ("keyed-dir", path) | ("mem", name) |
    ("debug", None) | ("listen"|"connect", (host, port)) | ("error", message)."""
    if store == "DIR":
        return "dir", url
    if store == "DEBUG":
        return "debug", None
    if store != "KEYED_STREAM":
        return "error", "Cannot find checkpoint store (%s)" % store
    scheme, rest = url.partition(":")[::2]
    if scheme in ("file", "textfile"):
        return "keyed-dir", rest
    if scheme == "mem":
        return "mem", rest
    if scheme == "net":
        mode, addr = rest.partition(":")[::2]
        host, port = addr.rpartition(":")[::2]
        if mode in ("a", "c") and host and port.isdigit():
            return ("listen" if mode == "a" else "connect"), (host, int(port))
    return "error", "Cannot open keyed stream for url (%s)" % url


def config_devices(root):
    """The VM's devices as [class, id] in XML order (the device manager's list)."""
    devices = root.child("devices")
    return [[dev.attr("class") or "", dev.attr("id") or ""]
            for dev in (devices.children_named("device") if devices is not None else [])]


def checkpoint_blob(sim, vm, opts):
    """What a save (or a send) captures of ``vm``, honouring the option mask: a JSON-able dict
    that every store writes and reads back.  Logs the device manager's save lines."""
    blob = {"format": "v3sim-checkpoint-2", "vm_name": vm["name"], "memory": None, "devices": None,
            "vcores": None}
    if not opts & CHKPT_SKIP_MEM:
        blob["memory"] = {"bytes": vm["mem_bytes"], "regions": len(vm["regions"])}
    if not opts & CHKPT_SKIP_DEVS:
        blob["devices"] = []
        for cls, dev_id in vm.get("devices", []):
            if cls.upper() in DEVICES_WITHOUT_SAVE:
                sim.klog("ERROR at palacios/src/palacios/vmm_dev_mgr.c(234): Error: %s save() not implemented"
                         % dev_id, vm=vm["name"])
                continue
            sim.klog("Saving state for device (%s)" % dev_id, vm=vm["name"])
            blob["devices"].append([cls, dev_id])
    if not opts & CHKPT_SKIP_CORES:
        blob["vcores"] = []
        for core in vm["vcores"]:
            _exits, rip = vcore_now(core)
            blob["vcores"].append({"rip": rip, "cpu_mode": core["cpu_mode"], "mem_mode": core["mem_mode"],
                                   "state": core["state"], "arch": not opts & CHKPT_SKIP_ARCH})
    return blob


def apply_checkpoint(sim, vm, blob, opts, label):
    """Load (or receive) ``blob`` into an existing VM.  False, with the reason in the kernel
    log only, when it does not fit: another memory size, fewer saved vcores, no header."""
    name = vm["name"]
    if not isinstance(blob, dict) or blob.get("format") != "v3sim-checkpoint-2":
        sim.klog("Unable to load checkpoint header", vm=name)
        return False
    mem = blob["memory"]
    if not opts & CHKPT_SKIP_MEM:
        if mem is None or mem["bytes"] != vm["mem_bytes"]:
            sim.klog("Unable to load all of memory (requested=%d bytes, result=%d bytes)" % (
                vm["mem_bytes"], -1 if mem is None else mem["bytes"]), vm=name)
            sim.klog("Unable to load memory", vm=name)
            return False
    if not opts & CHKPT_SKIP_DEVS:
        saved = blob["devices"] or []
        sim.klog("Loading State for %d devices" % len(saved), vm=name)
        have = {dev_id for _cls, dev_id in vm.get("devices", [])}
        for _cls, dev_id in saved:
            if dev_id not in have:
                sim.klog("Tried to load state into non existant device: %s" % dev_id, vm=name)
        for cls, _dev_id in vm.get("devices", []):
            if cls in LOAD_DEVICE_ERRORS:
                sim.klog("ERROR at palacios/src/devices/" + LOAD_DEVICE_ERRORS[cls], vm=name)
    cores = blob["vcores"]
    if not opts & CHKPT_SKIP_CORES:
        if cores is None or len(cores) < len(vm["vcores"]):
            sim.klog("Unable to load core %d" % (0 if cores is None else len(cores)), vm=name)
            return False
        now = time.time() if vm["state"] == VM_RUNNING else None
        # The vcores take the saved registers and run state; their exit counters start again
        # (observed: 0 exits, and "running" in the details of a VM loaded from a running one).
        for core, saved in zip(vm["vcores"], cores):
            core.update(exits=0, rip=saved["rip"], cpu_mode=saved["cpu_mode"], mem_mode=saved["mem_mode"],
                        state=saved["state"], run_since=now)
    vm["restored_from"] = label
    return True


def fail_running(vm):
    """A running VM whose load/receive fails ends up stopped (vmm_checkpoint.c: the state is trashed)."""
    if vm["state"] == VM_RUNNING:
        halt_vm(vm, VM_STOPPED)


def write_context(path, items, keyed):
    """One context file, mode 0600 (observed 11): its tagged items [(tag, data, length)], length
    beyond len(data) left as a hole (the simulator holds no guest memory). DIR writes the data
    only; the file: keyed stream frames each item. Opened without O_TRUNC, as the host file
    interface does: saving over an older checkpoint leaves the tail of longer old files."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        end = 0
        for tag, data, length in items:
            if keyed:
                key = tag.encode("ascii")
                os.write(fd, KS_FRAME.pack(KS_BOUNDARY, len(key)) + key + struct.pack("<Q", length))
            os.write(fd, data)
            end = os.lseek(fd, length - len(data), os.SEEK_CUR)
        if os.fstat(fd).st_size < end:
            os.ftruncate(fd, end)
    finally:
        os.close(fd)


def store_dir_write(sim, vm, where, blob, keyed):
    """The DIR store (and the file: keyed stream): the directory, then one file per context.
    DIR creates missing parents (v3_mkdir recursive, 0755); file: creates only the last
    component (vfs_mkdir 0700) and needs its parent."""
    try:
        if keyed:
            if not os.path.isdir(where):
                os.mkdir(where, 0o700)
        else:
            os.makedirs(where, mode=0o755, exist_ok=True)

        def context(name, *items):
            write_context(os.path.join(where, name), [(tag, data, len(data) if length is None else length)
                                                      for tag, data, length in items], keyed)

        context("header", ("header", CHKPT_HEADER, None))
        mem = blob["memory"]
        if mem is not None:
            regions = max(mem["regions"], 1)
            block = mem["bytes"] // regions
            context("memory_img", ("region_size", struct.pack("<Q", block), None),
                    ("num_regions", struct.pack("<I", regions), None),
                    *[("memory_img%d" % i, b"", block) for i in range(regions)])
        if blob["devices"] is not None:
            names = b"".join(os.fsencode(d)[:DEV_NAME_LEN].ljust(DEV_NAME_LEN, b"\0") for _c, d in blob["devices"])
            context("devices", ("num_devs", struct.pack("<I", len(blob["devices"])), None), ("names", names, None))
            for cls, dev_id in blob["devices"]:
                context(dev_id, ("class", cls.encode("ascii", "replace"), None))
        for idx, core in enumerate(blob["vcores"] or []):
            context("guest_info%d" % idx, ("registers", GUEST_INFO.pack(
                core["rip"], core["cpu_mode"].encode("ascii"), core["mem_mode"].encode("ascii"),
                core["state"].encode("ascii")), None))
            if core["arch"]:
                context("vmcb_data%d" % idx, ("vmcb", b"", VMCB_SIZE))
    except OSError as exc:
        sim.klog("unable to make directory %s (%s)" % (where, exc.strerror))
        return False
    return True


def read_context(where, name, keyed):
    """(the first 64 KiB of a context's data, its data size); the keyed stream's frames are read
    past, a frame that is not one makes the context unreadable (None, 0)."""
    try:
        with open(os.path.join(where, name), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if not keyed:
                return fh.read(65536), size
            head, total, pos = b"", 0, 0
            while pos < size:
                fh.seek(pos)
                frame = fh.read(KS_FRAME.size)
                if len(frame) < KS_FRAME.size:
                    return None, 0
                boundary, keylen = KS_FRAME.unpack(frame)
                if boundary != KS_BOUNDARY or keylen > 4096:
                    return None, 0
                fh.seek(keylen, os.SEEK_CUR)
                length = fh.read(8)
                if len(length) < 8:
                    return None, 0
                (datalen,) = struct.unpack("<Q", length)
                pos += KS_FRAME.size + keylen + 8 + datalen
                if pos > size:
                    return None, 0
                head += fh.read(min(datalen, 65536 - len(head))) if len(head) < 65536 else b""
                total += datalen
            return head, total
    except OSError:
        return None, 0


def store_dir_read(sim, vm, where, opts, keyed):
    """Read back what store_dir_write wrote; a missing context is None (apply_checkpoint says why)."""
    head, _size = read_context(where, "header", keyed)
    if head is None or head[:len(CHKPT_HEADER)] != CHKPT_HEADER:
        sim.klog("Unable to load checkpoint header", vm=vm["name"])
        return None
    blob = {"format": "v3sim-checkpoint-2", "vm_name": None, "memory": None, "devices": None, "vcores": None}
    if not opts & CHKPT_SKIP_MEM:
        data, size = read_context(where, "memory_img", keyed)
        if data is not None and len(data) >= MEM_IMG_HEAD.size:
            _block, regions = MEM_IMG_HEAD.unpack(data[:MEM_IMG_HEAD.size])
            blob["memory"] = {"bytes": size - MEM_IMG_HEAD.size, "regions": regions}
    if not opts & CHKPT_SKIP_DEVS:
        data, _size = read_context(where, "devices", keyed)
        if data is not None and len(data) >= 4:
            (count,) = struct.unpack("<I", data[:4])
            names = [data[4 + i * DEV_NAME_LEN:4 + (i + 1) * DEV_NAME_LEN].rstrip(b"\0") for i in range(count)]
            blob["devices"] = [["", os.fsdecode(n)] for n in names if n]
    if not opts & CHKPT_SKIP_CORES:
        blob["vcores"] = []
        for idx in range(len(vm["vcores"])):
            data, _size = read_context(where, "guest_info%d" % idx, keyed)
            arch, _vsize = read_context(where, "vmcb_data%d" % idx, keyed)
            if data is None or len(data) < GUEST_INFO.size or (arch is None and not opts & CHKPT_SKIP_ARCH):
                break
            rip, cpu_mode, mem_mode, state = GUEST_INFO.unpack(data[:GUEST_INFO.size])
            blob["vcores"].append({"rip": rip, "cpu_mode": cpu_mode.rstrip(b"\0").decode("ascii"),
                                   "mem_mode": mem_mode.rstrip(b"\0").decode("ascii"),
                                   "state": state.rstrip(b"\0").decode("ascii"), "arch": arch is not None})
    return blob


def store_write(sim, vm, kind, where, blob):
    if kind in ("dir", "keyed-dir"):
        return store_dir_write(sim, vm, where, blob, kind == "keyed-dir")
    if kind == "mem":
        sim.module["keyed_mem"][where] = blob
    elif kind == "debug":
        sim.klog("Checkpoint DEBUG store: %d bytes of memory, %d cores" % (
            (blob["memory"] or {}).get("bytes", 0), len(blob["vcores"] or [])), vm=vm["name"])
    return True


def store_read(sim, vm, kind, where, opts):
    if kind in ("dir", "keyed-dir"):
        return store_dir_read(sim, vm, where, opts, kind == "keyed-dir")
    blob = sim.module["keyed_mem"].get(where) if kind == "mem" else None
    if blob is None:
        sim.klog("Could not open context to load/receive (%s)" % where, vm=vm["name"])
    return blob


def chkpt_target(sim, tool, dev):
    """Open ``dev`` for a checkpoint/migration ioctl (caller holds the lock): (slot, vm), or None
    when it cannot be opened, or -1 when the ioctl fails at once -- not a VM device, a kernel
    built without CHECKPOINT / LIVE_MIGRATION (the ioctl is unhandled: -EINVAL), a refuse fault."""
    target = sim.device(dev)
    if target is None:
        return None
    if target[0] != "vm":
        if target[0] == "ctrl":
            sim.klog("Unhandled global ctrl cmd: %d" % CHKPT_IOCTL[tool])
        return -1
    if CHKPT_FEATURE[tool] not in sim.host["features"]:
        sim.klog("Unhandled ctrl cmd: %d" % CHKPT_IOCTL[tool])
        return -1
    if sim.kernel_refuses(tool, "checkpoint ioctl %d" % CHKPT_IOCTL[tool]):
        return -1
    return target[1], sim.vm(target[1])


def chkpt_ioctl(sim, tool, dev, store, url, opts):
    """The save/load ioctl.  Returns None when the device cannot be opened, else the ioctl
    result (0 / -1)."""
    with sim.locked():
        target = chkpt_target(sim, tool, dev)
        if not isinstance(target, tuple):
            return target
        vm = target[1]
        kind, where = chkpt_location(store, url)
        if kind == "error" or (kind == "debug" and tool != "v3_save") or kind in ("listen", "connect"):
            sim.klog(where if kind == "error" else "Store %s cannot be used by %s" % (store, tool),
                     vm=vm["name"])
            if tool == "v3_load":
                fail_running(vm)
            sim.commit()
            return -1
        label = "%s:%s" % (store, url)
        if tool == "v3_save":
            ok = store_write(sim, vm, kind, where, checkpoint_blob(sim, vm, opts))
            sim.commit()
            return 0 if ok else -1
        sim.klog("Loading Guest from %s" % label)
        blob = store_read(sim, vm, kind, where, opts)
        ok = blob is not None and apply_checkpoint(sim, vm, blob, opts, label)
        if not ok:
            fail_running(vm)
        sim.commit()
        return 0 if ok else -1


# --------------------------------------------------------------------------------------
# Kernel: live migration over the network keyed stream (vmm_checkpoint.c v3_chkpt_send_vm /
# v3_chkpt_receive_vm, linux_module/iface-keyed-stream.c; spec 7, observed 12), only when
# "built" with LIVE_MIGRATION
# --------------------------------------------------------------------------------------

# The host setting "migration_stream" says what the kernel's network keyed stream does:
# "broken" as observed on Linux 3.19 (both tools exit 255, the source keeps running, the target
# stays stopped with a fresh vcore), or "works" (as on kernels before 3.19: the VM moves).
MIGRATION_STREAMS = ("broken", "works")
# ERROR() and PrintError() lines carry __FILE__(__LINE__), as the tree was built.
KEYED_STREAM_C = "linux_module/iface-keyed-stream.c"
CHECKPOINT_C = "palacios/src/palacios/vmm_checkpoint.c"
FIRST_KEY = "memory_bitmap_bits"      # the first context a send writes and a receive opens
EPIPE, EFAULT, EADDRINUSE = 32, 14, 98


def ks_error(sim, line, msg):
    """linux_module ERROR(): "palacios (pcore N) <file>(<line>): msg"."""
    sim.klog("palacios (pcore 0) %s(%d): %s" % (KEYED_STREAM_C, line, msg), raw=True)


def chkpt_error(sim, vm, line, msg):
    """PrintError(vm, VCORE_NONE, ...): "palacios (pcore N vm NAME): ERROR at <file>(<line>): msg"."""
    sim.klog("ERROR at %s(%d): %s" % (CHECKPOINT_C, line, msg), vm=vm["name"])


def in_aton(text):
    """Linux in_aton(): dotted quad parsed loosely, as the __be32 a little-endian %x prints."""
    parts = (text.split(".") + ["0"] * 4)[:4]
    value = 0
    for part in parts:
        value = (value << 8) | (c_strtol(part, 10)[0] & 0xFF)
    return struct.unpack("<I", struct.pack(">I", value))[0]


def open_stream_net_log(sim, where, listen):
    """open_stream_net(): what it prints before it listens or connects."""
    host, port = where
    sim.klog("ip is %s" % host)
    sim.klog("host_ip is %x" % in_aton(host))
    sim.klog("port is %d (%d)" % (port, port))
    if listen:
        sim.klog("Accepting Connection on INADDR_ANY port:%d" % port)
    else:
        sim.klog("Connecting to %s:%d" % (host, port))


def stream_frames(records):
    """The keyed stream on the wire: per context u16 key length, key, u64 data length, data;
    a zero key length ends it."""
    out = bytearray()
    for key, data in records:
        raw = key.encode()
        out += struct.pack("!H", len(raw)) + raw + struct.pack("!Q", len(data)) + data
    return bytes(out + struct.pack("!H", 0))


def parse_frames(data):
    """(records, None) or (None, (what failed, key read)) for the receiver's error line."""
    records, pos = [], 0
    while True:
        if pos + 2 > len(data):
            return None, ("recv key len", None)
        (keylen,) = struct.unpack_from("!H", data, pos)
        pos += 2
        if keylen == 0:
            return records, None
        key = data[pos:pos + keylen].decode("latin-1")
        pos += keylen
        if not records and key != FIRST_KEY:
            return None, ("key", key)
        if pos + 8 > len(data):
            return None, ("recv key len", None)
        (size,) = struct.unpack_from("!Q", data, pos)
        pos += 8
        records.append((key, data[pos:pos + size]))
        pos += size


def migration_records(sim, vm, opts):
    """The contexts a send writes, in order: the memory bitmap first, then what a checkpoint
    holds (checkpoint_blob)."""
    return [(FIRST_KEY, b""), ("v3sim-state", dump_json(checkpoint_blob(sim, vm, opts)).encode())]


def migration_blob(records):
    state = dict(records).get("v3sim-state")
    try:
        return json.loads(state.decode()) if state is not None else None
    except ValueError:
        return None


def send_failed_log(sim, vm, err):
    """A send whose first write fails (nobody listens: the connect result is ignored, so the
    socket is unconnected, -EPIPE)."""
    ks_error(sim, 2456, "Send msg error -%d" % err)
    ks_error(sim, 2701, "Unable to open key for writing on net_stream (send key len+name)")
    chkpt_error(sim, vm, 551, "Cannot open context for dirty memory bitmap")
    chkpt_error(sim, vm, 1388, "Error sending incremental memory.")
    sim.klog("Error sending VM")


def receive_failed_log(sim, vm, why):
    """A receive that fails once the stream is open; a running target is stopped ("It is now
    borked"), which the caller does."""
    if why[0] == "key":
        ks_error(sim, 2747, "Key mismatch in open_key_net - expect %s but got %s" % (FIRST_KEY, why[1]))
    else:
        ks_error(sim, 2713, "Unable to open key for reading on net_stream (recv key len)")
        chkpt_error(sim, vm, 619, "Cannot open context to receive memory bitmap")
        chkpt_error(sim, vm, 1495, "Error receiving incremental memory.")
    chkpt_error(sim, vm, 1529, "Unable to receive VM")
    sim.klog("Error receiving VM")


def migrate_ioctl(sim, tool, dev, store, url, opts):
    """The send (34) / receive (35) ioctl: None when the device cannot be opened, else 0 / -1.
    The network waits (connect, accept, transfer) run without the host lock, as the real
    ioctl blocks in the kernel while other tools go on."""
    sending = tool == "v3_send"
    with sim.locked():
        target = chkpt_target(sim, tool, dev)
        if not isinstance(target, tuple):
            return target
        slot, vm = target
        ident = (slot, vm["name"], vm["created"])
        label = "%s:%s" % (store, url)
        sim.klog("%s (live-migrating) Guest to %s" % ("Sending" if sending else "Receiving", label))
        if not sending and not opts & CHKPT_SKIP_MEM and any(c["paging"] != "shadow" for c in vm["vcores"]):
            chkpt_error(sim, vm, 1456, "Cannot currently handle nested paging")
            sim.klog("Error receiving VM")
            sim.commit()
            return -1
        kind, where = chkpt_location(store, url)
        if kind != ("connect" if sending else "listen"):
            # DIR, file: and mem: stores cannot carry a migration stream (observed 12: it repeats
            # keys); neither can a listening send or a connecting receive.
            sim.klog("Cannot open keyed stream for url (%s)" % url if kind == "error" else
                     "Store %s (%s) cannot carry a migration stream" % (store, url))
            if sending:
                chkpt_error(sim, vm, 1388, "Error sending incremental memory.")
                sim.klog("Error sending VM")
            else:
                receive_failed_log(sim, vm, ("recv key len", None))
                fail_running(vm)
            sim.commit()
            return -1
        open_stream_net_log(sim, where, listen=not sending)
        broken = sim.host["migration_stream"] == "broken"
        srv = None
        if not sending:
            srv = net_listen(where[1])
            if isinstance(srv, int):
                ks_error(sim, 2546, "Bind err: -%d" % srv)
                ks_error(sim, 2474, "Receive message on null net_stream")
                receive_failed_log(sim, vm, ("recv key len", None))
                fail_running(vm)
                sim.commit()
                return -1
        sim.commit()

    def same_vm():
        cur = sim.vm(slot) if sim.module else None
        return cur if cur is not None and (slot, cur["name"], cur["created"]) == ident else None

    if sending:
        return net_send_vm(sim, where, opts, broken, same_vm)
    return net_receive_vm(sim, srv, opts, broken, label, same_vm)


def net_listen(port):
    """accept_once(): bind INADDR_ANY (the url's address is not used) and listen; the socket,
    or the errno of a failed bind."""
    import socket
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind(("0.0.0.0", port))
        srv.listen(2)
    except OSError as exc:
        srv.close()
        return exc.errno or EADDRINUSE
    return srv


def net_send_vm(sim, where, opts, broken, same_vm):
    import socket
    try:
        conn = socket.create_connection(where, timeout=NET_TIMEOUT)
    except OSError:
        conn = None
    with sim.locked():
        vm = same_vm()
        if vm is None:
            return -1
        if conn is None:
            send_failed_log(sim, vm, EPIPE)
            sim.commit()
            return -1
        if broken:
            # Observed 12: the data write fails (-EFAULT) during the pre-copy, before the final
            # pause: the VM keeps running.
            ks_error(sim, 2456, "Send msg error -%d" % EFAULT)
            ks_error(sim, 2885, "Could not send data in write_key_net")
            chkpt_error(sim, vm, 1388, "Error sending incremental memory.")
            sim.klog("Error sending VM")
            sim.commit()
            conn.close()
            return -1
        if not opts & CHKPT_SKIP_MEM and vm["state"] == VM_RUNNING:
            freeze_vcores(vm)
            vm["state"] = VM_PAUSED     # the last pre-copy round runs paused; the source stays paused
        payload = stream_frames(migration_records(sim, vm, opts))
        sim.commit()
    try:
        with conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        return 0
    except OSError:
        with sim.locked():
            vm = same_vm()
            if vm is not None:
                ks_error(sim, 2456, "Send msg error -%d" % EPIPE)
                ks_error(sim, 2885, "Could not send data in write_key_net")
                sim.klog("Error sending VM")
                sim.commit()
        return -1


def net_receive_vm(sim, srv, opts, broken, label, same_vm):
    srv.settimeout(NET_TIMEOUT)
    data = b""
    try:
        with srv:
            conn = srv.accept()[0]          # the first connection is the stream, whoever it is
        with conn:
            conn.settimeout(NET_TIMEOUT)
            while True:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
    except OSError:
        pass
    with sim.locked():
        vm = same_vm()
        if vm is None:
            return -1
        if broken:
            records, why = None, ("key", "")   # observed 12: the key read back is not the one sent
        else:
            records, why = parse_frames(data)
        blob = migration_blob(records) if records is not None else None
        ok = blob is not None and apply_checkpoint(sim, vm, blob, opts, label)
        if not ok:
            receive_failed_log(sim, vm, why or ("recv key len", None))
            fail_running(vm)
        sim.commit()
        return 0 if ok else -1


# --------------------------------------------------------------------------------------
# The v3 tools (linux_usr/*.c): argv syntax, output and exit codes of the real ones (spec 0-1, observed 9)
# --------------------------------------------------------------------------------------

def v3_usage(argv0, fmt):
    """v3_ctrl.h v3_usage(): stdout, then exit(0)."""
    IO.out("\nUsage: %s %s" % (argv0, fmt))
    IO.out("\n\nThe V3Vee Project (c) 2012\n\thttp://v3vee.org\n\n\n")
    raise ToolExit(0)


def vm_ioctl(sim, target, cmd, handler):
    """ioctl on an opened device: a VM device runs the handler; the control device does
    not know VM ioctls (-EINVAL); any other file is not a tty device (-ENOTTY)."""
    if target[0] == "vm":
        sim.note_target(target[1])
        return handler(target[1])
    if target[0] == "ctrl":
        sim.klog("\tUnhandled global ctrl cmd: %d" % cmd)
    return -1


def build_image_from_xml(xml_path, pairs, pad_headers, out):
    """The -b half of v3_create (and build-image): returns (image, None) or
    (None, (action, stream, text)) with action "crash" or "exit"."""
    try:
        with open(xml_path, "rb") as fh:
            data = fh.read()
    except IsADirectoryError:
        data = b""
    except OSError:
        return None, ("crash", "out", "Error: Could not open XML input file (%s)\n" % xml_path)
    root, err = xml_parse(data)
    if root is None:
        return None, ("crash", "out", err + "\n")
    xml_opts = [n for n in root.walk() if n.attr("opt_tag") is not None]
    for tag, value in pairs:
        node = next((n for n in xml_opts if n.attr("opt_tag").lower() == tag.lower()), None)
        if node is None:
            return None, ("exit", "out", "Could not find Config option (%s) in XML file\n" % tag)
        node.text = value                         # ezxml_set_txt
    files = root.child("files")
    entries = []
    for index, node in enumerate(files.children_named("file") if files is not None else []):
        filename, dup = user_get_val(node, "filename")
        if dup is None:
            _file_id, dup = user_get_val(node, "id")
        if dup is not None:
            return None, ("exit", "out", dup)
        try:
            size = os.stat(filename).st_size     # relative to the CURRENT directory
        except OSError as exc:
            return None, ("exit", "err", "%s: %s\n" % (filename, os.strerror(exc.errno)))
        node.set_attr("index", str(index))
        entries.append((filename, size & 0xFFFFFFFF))
    xml_bytes = xml_serialize(root).encode("utf-8", "surrogateescape")
    blobs = []
    for filename, size in entries:
        try:
            with open(filename, "rb") as fh:
                blob = fh.read(size)
        except OSError:
            return None, ("exit", "out", "Error: Could not open aux file (%s)\n" % filename)
        blob += b"\0" * (size - len(blob))
        out("File Hash: %x\n" % v3_hash_buffer(blob))
        blobs.append(blob)
    return pack_image(xml_bytes, blobs, pad_headers), None


def tool_v3_create(sim, tool, argv0, args):
    opts, pos = getopt_all(args, "b")        # opterr = 0: unknown options silently ignored
    build = any(pair[0] == "b" for pair in opts)
    if len(pos) < 2:
        v3_usage(argv0, "[-b] <guest_img> <vm_name> [cfg options]\n")
    filename, name = pos[0], pos[1]
    if build:
        cfgs = pos[2:]
        IO.out("Building VM Image (cfg=%s) (name=%s) (%d config options)\n" % (filename, name, len(cfgs)))
        pairs = []
        for cfg in cfgs:
            tag, sep, value = cfg.partition("=")
            if not sep:
                IO.out("Invalid Option format: %s\n" % cfg)
                return 255
            IO.out("Config option: %s: %s\n" % (tag, value))
            pairs.append((tag, value))
        img, failure = build_image_from_xml(filename, pairs, True, IO.out)
        if failure:
            action, stream, text = failure
            (IO.out if stream == "out" else IO.err)(text)
            if action == "crash":
                die_by_signal()                    # NULL ezxml tree dereferenced [BUG]
            return 255
        IO.out("Guest Image Created (size=%u)\n" % (len(img) & 0xFFFFFFFF))
    else:
        IO.out("Loading VM Image (img=%s) (name=%s)\n" % (filename, name))
        try:
            fd = os.open(filename, os.O_RDONLY)
        except OSError:
            IO.out("Error Opening guest image: %s\n" % filename)
            return 255
        try:
            size = os.fstat(fd).st_size
            chunks, left = [], size
            try:
                while left > 0:
                    chunk = os.read(fd, left)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    left -= len(chunk)
            except OSError:
                pass
        finally:
            os.close(fd)
        img = b"".join(chunks)
        if len(img) < size:
            IO.err("Error could not finish reading file\n")
            img += b"\0" * (size - len(img))
        IO.out("Guest Image Loaded (size=%u)\n" % (size & 0xFFFFFFFF))
    with sim.locked():
        if sim.device("/dev/v3vee") is None:
            IO.err("Error opening V3Vee control device\n")
            IO.out("Error (-1) creating VM\n")
            return 255
        try:
            slot = kernel_create(sim, tool, img, name)
        except KernelOops:
            sim.commit()
            # The oops kills the process inside the ioctl: the shell says "Killed", status 137.
            # stdout keeps what was printed before the ioctl (observed), no "created at" line.
            IO.flush()
            die_by_signal(signal.SIGKILL)
        sim.commit()
    if slot < 0:
        IO.err("IOCTL error on V3Vee control device (-1)\n")
        IO.out("Error (-1) creating VM\n")
        return 255
    IO.out("VM (%s) created at /dev/v3-vm%d\n" % (name, slot))
    return 0


def tool_v3_free(sim, tool, argv0, args):
    if not args:
        v3_usage(argv0, "<vm-dev-idx>|<vm-dev>\n")
    text = args[0]
    if "v3-vm" in text:                       # "/dev/v3-vm3" -> "3"; "/tmp/v3-vm-x" -> 0 [BUG]
        text = text[text.index("v3-vm") + len("v3-vm"):]
    idx = c_strtol(text, 0)[0] & U64
    IO.out("Freeing VM %d\n" % idx)
    with sim.locked():
        if sim.device("/dev/v3vee") is None:
            IO.err("Error opening V3Vee control device\n")
            rc = -1
        else:
            try:
                rc = kernel_free(sim, tool, idx)
            except HostHang:
                rc = None
            if rc is not None and rc < 0:
                IO.err("IOCTL error on V3Vee control device (-1)\n")
        sim.commit()
    if rc is None:
        while True:                           # never returns (observed); callers need a deadline
            time.sleep(3600)
    if rc < 0:
        IO.err("Error freeing VM %d (%s)\n" % (idx, args[0]))
        return 255
    return 0


def tool_v3_launch(sim, tool, argv0, args):
    if not args:
        v3_usage(argv0, "<vm-device>\n")
    path = args[0]
    IO.out("Launching VM (%s)\n" % path)
    with sim.locked():
        target = sim.device(path)
        if target is None:
            IO.err("Error opening V3Vee VM device: %s\n" % path)
            IO.err("Error launching VM (%s)\n" % path)
        elif vm_ioctl(sim, target, 25, lambda slot: kernel_launch(sim, tool, slot)) < 0:
            IO.err("IOCTL error on device %s (-1)\n" % path)
            IO.err("Error launching VM (%s)\n" % path)
        sim.commit()
    return 0                                   # main() ignores launch_vm()'s result


def tool_v3_stop(sim, tool, argv0, args):
    if not args:
        v3_usage(argv0, "<vm-device>\n")
    path = args[0]
    IO.out("Stopping VM (%s)\n" % path)
    with sim.locked():
        target = sim.device(path)
        if target is None:
            IO.err("Error opening V3Vee VM device: %s\n" % path)
            rc = -1
        else:
            rc = vm_ioctl(sim, target, 26, lambda slot: kernel_stop(sim, tool, slot))
            if rc < 0:
                IO.err("IOCTL error on device %s (-1)\n" % path)
        sim.commit()
    if rc < 0:
        IO.err("Error stopping VM (%s)\n" % path)
        return 255
    return 0


def pause_or_continue(sim, tool, args, word, cmd, handler):
    if not args:
        IO.out("usage: %s <vm_device>\n" % tool)
        return 255
    IO.out("%s VM\n" % word)
    with sim.locked():
        target = sim.device(args[0])
        if target is None:
            IO.out("Error opening V3Vee VM device\n")
            return 255
        vm_ioctl(sim, target, cmd, lambda slot: handler(sim, tool, slot))   # result ignored
        sim.commit()
    return 0


def tool_v3_pause(sim, tool, argv0, args):
    return pause_or_continue(sim, tool, args, "Pausing", 23, kernel_pause)


def tool_v3_continue(sim, tool, argv0, args):
    return pause_or_continue(sim, tool, args, "Continuing", 24, kernel_continue)


RESET_USAGE = ("usage: v3_reset <vm_device> all|hrt|ros|range [first_core num_cores]\n\n"
               "Resets the VM or a part of it.\n"
               "  all   : full reset of entire VM\n"
               "  hrt   : reset of all HRT cores for an HVM VM\n"
               "  ros   : reset of ROS cores for an HVM VM\n"
               "  range : reset of cores first_core to first_core+num_cores-1\n\n")


def tool_v3_reset(sim, tool, argv0, args):
    if len(args) < 2:
        IO.out(RESET_USAGE)
        return 255
    kind = args[1].lower()
    if kind not in ("all", "hrt", "ros", "range") or (kind == "range" and len(args) != 4):
        IO.out(RESET_USAGE)
        return 255
    first = num = 0
    IO.out("Doing VM reset:  %s " % kind.upper())
    if kind == "range":
        first, num = c_atoi(args[2]) & 0xFFFFFFFF, c_atoi(args[3]) & 0xFFFFFFFF
        IO.out("cores %u to %u\n" % (first, (first + num - 1) & 0xFFFFFFFF))
    else:
        IO.out("\n")
    with sim.locked():
        target = sim.device(args[0])
        if target is None:
            IO.out("Error opening VM device: %s\n" % args[0])
            return 255
        rc = vm_ioctl(sim, target, 40, lambda slot: kernel_reset(sim, tool, slot, kind, first, num))
        sim.commit()
    if rc < 0:
        IO.out("Error sending reset commad to vm\n")
        return 255
    spawn_reset_finisher(sim)
    return 0


MEM_USAGE = ("usage: v3_mem [-h] [-v] [ [-k] [-l] [-n k] [-m n] -a <memory size (MB)>] | [-r <hexaddr> | offline]\n\n"
             "Palacios Memory Management\n\nMemory Addition\n"
             " -a <mem>      Allocate memory for use by Palacios (MB).\n\n"
             " With    -k    this requests in-kernel allocation\n"
             " Without -k    this attempts to offline memory via hot remove\n\n"
             " With    -l    the request or offlining is limited to first 4 GB\n"
             " Without -l    the request or offlining has no limits\n\n"
             " With    -m n  the search for offlineable memory starts at n MB\n"
             " Without -m n  the search for offlineable memory starts at 0 MB\n\n"
             " With    -n i  the request is for numa node i\n"
             " Without -n i  the request can be satified on any numa node\n\n"
             "Memory Removal\n"
             " -r <hexaddr>  Free Palacios memory containing hexaddr, online it if needed\n"
             " -r offline    Free all offline Palacios memory and online it\n\n"
             "Shared Options\n"
             " -v            Verbose\n"
             " -h            Help\n")

KERNEL_SETUP_FIELDS = (("kernel MAX_ORDER:\t", "Cannot read kernel MAX_ORDER\n"),
                       ("number of nodes:\t", "Cannot read kernel number of numa nodes\n"),
                       ("number of cpus:\t", "Cannot read kernel number of cpus\n"),
                       ("palacios compiled mem_block_size:\t",
                        "Cannot read palacios compiled mem_block_size\n"),
                       ("palacios run-time mem_block_size:\t",
                        "Cannot read palacios run-time mem_block_size\n"))


def scanf_ull(text, pos, literal):
    """fscanf(f, "<literal>%llu\\n"): whitespace in the format skips any whitespace."""
    for ch in literal:
        if ch in _C_SPACE:
            while pos < len(text) and text[pos] in _C_SPACE:
                pos += 1
        elif pos < len(text) and text[pos] == ch:
            pos += 1
        else:
            return None, pos
    while pos < len(text) and text[pos] in _C_SPACE:
        pos += 1
    match = re.match(r"[+-]?[0-9]+", text[pos:])
    if not match:
        return None, pos
    value = int(match.group(0)) & U64
    pos += match.end()
    while pos < len(text) and text[pos] in _C_SPACE:
        pos += 1
    return value, pos


def read_kernel_setup(sim):
    """v3_mem.c get_kernel_setup(): parse /proc/v3vee/v3-info like its fscanf calls."""
    try:
        with open(os.path.join(sim.proc_dir, "v3-info"), "r", encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        IO.err("Cannot open /proc/v3vee/v3-info\n")
        return None
    values, pos = [], 0
    for literal, error in KERNEL_SETUP_FIELDS:
        value, pos = scanf_ull(text, pos, literal)
        if value is None:
            IO.err(error)
            return None
        values.append(value)
    return dict(zip(("max_order", "nodes", "cpus", "compiled", "runtime"), values))


def read_offlined(path):
    entries = []
    with contextlib.suppress(OSError):
        with open(path, "r", encoding="latin-1") as fh:
            for match in re.finditer(r"\s*(?:0[xX])?([0-9a-fA-F]+)\s+(?:0[xX])?([0-9a-fA-F]+)", fh.read()):
                entries.append([int(match.group(1), 16), int(match.group(2), 16)])
    return entries


def offline_memory(sim, size, min_start, limit32, node, vprint):
    """v3_mem.c offline_memory() over the simulated /sys/devices/system/memory.  Note the
    real code tests the minimum start and the 32-bit limit against the *directory index*
    rather than the block number (they differ above the PCI hole) -- kept as is."""
    block_size = SYSFS_BLOCK
    vprint("Memory block size is %dMB (%d bytes)\n" % (block_size // MiB, block_size))
    num_blocks = -(-size // block_size)
    min_start = block_size * -(-min_start // block_size)
    first_block, limit_block = min_start // block_size, 0xFFFFFFFF // block_size
    blocks = memory_blocks(sim.host)
    offline = set(sim.kernel["offline_blocks"])
    usable = set()
    for i, (num, bnode) in enumerate(blocks):
        name = "/sys/devices/system/memory/memory%d/removable" % num
        if i < first_block:
            vprint("Skipping %s due to minimum start constraint\n" % name)
            continue
        if limit32 and i > limit_block:
            vprint("Skipping %s due to 32 bit constraint\n" % name)
            continue
        if node >= 0 and bnode != node:
            vprint("Skipping %s due to it being in the wrong node\n" % name)
            continue
        if not block_removable(sim, num):
            vprint("Checking %s...Not removable\n" % name)
            continue
        if num in offline:
            vprint("Checking %s...Removable and Already Offline (unusable)\n" % name)
        else:
            vprint("Checking %s...Removable and Online (usable)\n" % name)
            usable.add(num)
    run = reg_start = 0
    for i in range(blocks[-1][0] + 1):
        if i not in usable:
            reg_start, run = i + 1, 0
            continue
        run += 1
        if run >= num_blocks:
            break
    if run < num_blocks:
        IO.err("Could not find enough consecutive memory blocks... (found %d)\n" % run)
        return None
    for num in range(reg_start, reg_start + num_blocks):
        vprint("Offlining block %d (/sys/devices/system/memory/memory%d/state)\n" % (num, num))
        offline.add(num)
    sim.kernel["offline_blocks"] = sorted(offline)
    return num_blocks * block_size, reg_start * block_size


def online_memory(sim, base, length):
    first = base // SYSFS_BLOCK
    last = first + max(1, -(-length // SYSFS_BLOCK))
    sim.kernel["offline_blocks"] = [b for b in sim.kernel["offline_blocks"] if not first <= b < last]


def c_system(command):
    """system(3): /bin/sh -c command; returns the raw wait status."""
    import subprocess
    try:
        proc = subprocess.run(["/bin/sh", "-c", command], check=False)
    except OSError:
        return 127 << 8
    return (-proc.returncode) & 0x7F if proc.returncode < 0 else (proc.returncode & 0xFF) << 8


def tool_v3_mem(sim, tool, argv0, args):
    verbose = help_ = request = limit32 = False
    op, node, min_start = None, -1, 0
    gen = gnu_getopt(args, "hvarklm:n:")
    positionals = []
    while True:
        try:
            opt, val = next(gen)
        except StopIteration as stop:
            positionals = stop.value
            break
        if opt == "?":
            ch, kind = val
            # opterr is left at 1 in v3_mem, so glibc getopt complains first.
            if kind == "missing":
                IO.err("%s: option requires an argument -- '%s'\n" % (argv0, ch))
            else:
                IO.err("%s: invalid option -- '%s'\n" % (argv0, ch))
            if kind == "missing" and ch == "n":
                IO.err("-n requires the numa node...\n")
            elif kind == "missing" and ch == "m":
                IO.err("-m requires the minimum starting address (in MB)...\n")
            else:
                IO.err("Unknown option %s\n" % ch)
            return 255
        if opt == "h":
            help_ = True
        elif opt == "v":
            verbose = True
        elif opt == "a":
            op = "add"
        elif opt == "r":
            op = "remove"
        elif opt == "k":
            request = True
        elif opt == "l":
            limit32 = True
        elif opt == "m":
            min_start = (c_strtol(val, 10)[0] * MiB) & U64
        elif opt == "n":
            node = c_atoi(val)
    if op is None or not positionals or help_:
        IO.err(MEM_USAGE)
        return 255

    def vprint(text):
        if verbose:
            IO.out(text)

    setup = read_kernel_setup(sim)
    if setup is None:
        IO.err("Cannot read kernel setup\n")
        return 255
    max_page_alloc = (4096 << setup["max_order"]) & U64
    alloffline, base_addr, size = False, 0, 0
    if op == "add":
        size = double_to_ull(c_atof(positionals[0]) * MiB)
        if size < setup["runtime"] or size < PALACIOS_MIN_ALLOC:
            # [BUG] kept: a stray comma makes the third line an argument, so the tool prints
            # the address of that string literal as "Your request" and the request size as
            # the block size (0x4b2f58 stands in for the address in a static binary).
            IO.err("Trying to add a smaller single chunk of memory than Palacios needs\n"
                   "Your request:                        %d bytes\n"
                   "Palacios run-time memory block size: %d bytes\n" % (0x4B2F58, size))
            return 255
        if request and size > max_page_alloc:
            IO.err("Trying to request a larger single chunk of memory than the kernel can allocate\n"
                   "Your request:                        %d bytes\n"
                   "Kernel largest page allocation:      %d bytes\n"
                   "Kernel MAX_ORDER:                    %d\n" % (size, max_page_alloc, setup["max_order"]))
            return 255
        if 0 <= node and node >= setup["nodes"]:
            IO.err("Trying to request or allocate memory for a nonexistent node\n"
                   "Your request:                        node %d\n"
                   "Kernel number of nodes:              %d\n" % (node, setup["nodes"]))
    elif positionals[0].lower() == "offline":
        alloffline = True
    else:
        base_addr = c_strtol(positionals[0], 16)[0] & U64
    palacios_dir = os.environ.get("PALACIOS_DIR")
    if palacios_dir is None:
        IO.err("Please set the PALACIOS_DIR variable\n")
        return 255
    offname = palacios_dir + "/.v3offlinedmem"
    try:
        with open(offname, "a+"):
            pass
    except OSError:
        IO.err("Cannot open or create offline memory file %s" % offname)
        return 255
    if op == "remove" and alloffline:
        # No /dev/v3vee needed: re-invoke "v3_mem -r <hex>" through the shell for every
        # recorded range; the raw statuses are ORed and truncated to 8 bits [BUG].
        status = 0
        for start, _length in read_offlined(offname):
            status |= c_system("v3_mem -r %x" % start)
        return status & 0xFF
    with sim.locked():
        if sim.device("/dev/v3vee") is None:
            IO.err("Error opening V3Vee control device\n")
            return 255
        if op == "add":
            if not request:
                vprint("Trying to offline memory (size=%d, min_start=%d, limit32=%d)\n"
                       % (size, min_start, int(limit32)))
                found = offline_memory(sim, size, min_start, limit32, node, vprint)
                if found is None:
                    IO.err("Could not offline memory\n")
                    sim.commit()
                    return 255
                num_bytes, base_addr = found
                with open(offname, "a") as fh:
                    fh.write("%x\t%x\n" % (base_addr, num_bytes))
                IO.out("Memory of size %d at 0x%x has been offlined\n" % (num_bytes, base_addr))
                rtype, num_pages = 0, num_bytes // PAGE_SIZE
            else:
                vprint("Generating memory allocation request (size=%d, limit32=%d)\n" % (size, int(limit32)))
                rtype, num_pages, base_addr = (2 if limit32 else 1), size // PAGE_SIZE, 0
            vprint("Allocation request is: type=%d, node=%d, base_addr=0x%x, num_pages=%d\n"
                   % (rtype, node, base_addr, num_pages))
            rc = kernel_add_memory(sim, tool, rtype, node, base_addr, num_pages)
            sim.commit()
            if rc < 0:
                IO.err("Request rejected by Palacios\n")
                IO.out("Allocation of memory by Palacios has failed.  Check dmesg output for more information.\n")
                return 255
            vprint("Request accepted by Palacios\n")
            IO.out("%d bytes of memory has been allocated by Palacios\n" % ((num_pages * PAGE_SIZE) & U64))
            return 0
        entries = read_offlined(offname)
        entry = next((e for e in entries if e[0] <= base_addr < e[0] + e[1]), None)
        vprint("Deallocation request is: type=%d, base_addr=0x%x\n" % (1 if entry is None else 0, base_addr))
        rc = kernel_remove_memory(sim, tool, base_addr)
        if rc < 0:
            sim.commit()
            IO.err("Request rejected by Palacios\n")
            return 255
        vprint("Request accepted by Palacios\n")
        IO.out("Memory at 0x%x has been deallocated by Palacios\n" % base_addr)
        if entry is not None:
            vprint("Onlining the memory to make it available to the kernel\n")
            online_memory(sim, entry[0], entry[1])
            entry[1] = 0
            with open(offname, "w") as fh:
                fh.writelines("%x\t%x\n" % (s, n) for s, n in entries if n)
        else:
            vprint("Memory was deallocated in the kernel\n")
        IO.out("Memory at 0x%x has been onlined\n" % base_addr)
        sim.commit()
    return 0


def tool_v3_mem_reset(sim, tool, argv0, args):
    if len(args) != 1 or args[0] != "-f":
        IO.out("usage: v3_mem_reset -f\n\nThis will deinit and then init the memory manager.\n\n"
               "You probably do not want to do this.\n")
        return 255
    with sim.locked():
        if sim.device("/dev/v3vee") is None:
            IO.out("Error opening V3Vee control device\n")
            return 255
        kernel_reset_memory(sim, tool)          # result ignored by the tool
        sim.commit()
    return 0


def stream_client_alive(stream):
    """A client holds the stream until its process ends (the kernel releases the fd then)."""
    pid = stream.get("client")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def kernel_stream_connect(sim, slot, name):
    """ioctl 21 V3_VM_STREAM_CONNECT: one client per stream name, in any VM state."""
    vm = sim.vm(slot)
    stream = vm.get("streams", {}).get(name)
    if stream is None:
        sim.klog("Could not find stream (%s)" % name, vm=vm["name"])
        return -1
    if stream_client_alive(stream):
        sim.klog("Stream (%s) already connected" % name, vm=vm["name"])
        return -1
    stream["client"] = os.getpid()
    sim.klog("Stream (%s) connected" % name, vm=vm["name"])
    return 0


def stream_of(sim, slot, name):
    """This client's stream, or None once the VM, the module or the connection is gone."""
    vm = sim.vm(slot) if sim.module else None
    stream = vm.get("streams", {}).get(name) if vm else None
    return stream if stream is not None and stream.get("client") == os.getpid() else None


def stream_exchange(sim, slot, name, disconnect=False):
    """Take the guest's pending output (and let go of the stream when disconnecting)."""
    with sim.locked():
        stream = stream_of(sim, slot, name)
        if stream is None:
            return b""
        data = stream["buffer"].encode("latin-1")
        stream["buffer"] = ""
        if disconnect:
            stream["client"] = None
        if data or disconnect:
            sim.save_state()
    return data


def stream_client(sim, slot, name, got):
    """v3_stream's loop: guest output to stdout, stdin to the guest.  Nothing is printed on
    connect or disconnect; it never exits by itself; at stdin EOF it spins (observed: 100%
    CPU); SIGINT -> stderr "Bye", exit 0; SIGTERM kills it (143)."""
    import select
    eof, last_poll = False, 0.0
    while not got:
        now = time.time()
        if now - last_poll >= 0.05:           # the spinning loop still polls the kernel at this pace
            last_poll = now
            data = stream_exchange(sim, slot, name)
            if data:
                CStdio._write(1, data)
        try:
            ready = select.select([0], [], [], 0 if eof else 0.05)[0]
        except (OSError, ValueError):
            ready, eof = [], True
        if ready and not eof:
            try:
                eof = not os.read(0, 4096)    # input goes to the guest; no simulated guest reads it
            except OSError:
                eof = True
    stream_exchange(sim, slot, name, disconnect=True)
    if got[0] == signal.SIGTERM:
        die_by_signal(signal.SIGTERM)
    IO.err("Bye\n")
    return 0


def tool_v3_stream(sim, tool, argv0, args):
    _opts, pos = getopt_all(args, "i")      # -i: raw terminal mode, not simulated
    if len(pos) < 2:
        IO.err("usage: v3_stream [-i] <vm_device> <stream_name>\n")
        return 0
    dev, name = pos[0], pos[1]
    got = []                                  # signals, noted from before the connect on
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda num, _frame: got.append(num))
    with sim.locked():
        target = sim.device(dev)
        rc = -1
        if target is not None:
            rc = vm_ioctl(sim, target, 21, lambda slot: kernel_stream_connect(sim, slot, name))
        sim.save_state()
    if rc < 0:
        # One message for every failure (observed); dmesg tells which.
        IO.err("Error opening VM device: %s\n" % dev)
        return 255
    return stream_client(sim, target[1], name, got)


CHKPT_OPTIONS = (" optionmask consists of the sum of any of the following\n"
                 " 0    none\n 1    skip memory\n 2    skip devices\n 4    skip cores\n"
                 " 8    skip architecture-specific core state\n")
CHKPT_USAGE = {"v3_save": "usage: v3_save", "v3_load": "usage: v3_load",
               "v3_send": "Usage: ./v3_send", "v3_receive": "Usage: ./v3_receive"}


def tool_chkpt(sim, tool, argv0, args):
    if len(args) < 3:
        IO.out("%s <vm_device> <store> <url> [optionmask]\n" % CHKPT_USAGE[tool] + CHKPT_OPTIONS)
        return 255
    dev, store, url = args[0], args[1], args[2]
    if len(os.fsencode(store)) >= 128:
        IO.out("ERROR: Checkpoint store name longer than maximum size (128)\n")
        return 255
    if len(os.fsencode(url)) >= 256:
        IO.out("ERROR: Checkpoint URL longer than maximum size (256)\n")
        return 255
    opts = c_strtol(args[3], 10)[0] & U64 if len(args) > 3 else 0
    rc = (migrate_ioctl if tool in ("v3_send", "v3_receive") else chkpt_ioctl)(sim, tool, dev, store, url, opts)
    if rc is None:
        IO.out("Error opening VM device: %s\n" % dev)
        return 255
    if rc < 0 and tool == "v3_send":
        IO.out("Error sending the VM\n")
        return 255
    if rc < 0 and tool == "v3_receive":
        IO.out("VM reception failed\n")
        return 255
    return 0                                  # v3_save / v3_load ignore the ioctl result


TOOL_FUNCS = {"v3_create": tool_v3_create, "v3_free": tool_v3_free, "v3_launch": tool_v3_launch,
              "v3_stop": tool_v3_stop, "v3_pause": tool_v3_pause, "v3_continue": tool_v3_continue,
              "v3_reset": tool_v3_reset, "v3_mem": tool_v3_mem, "v3_mem_reset": tool_v3_mem_reset,
              "v3_save": tool_chkpt, "v3_load": tool_chkpt, "v3_send": tool_chkpt,
              "v3_receive": tool_chkpt, "v3_stream": tool_v3_stream}


def log_tool(sim, tool, args):
    """ROOT/tools.log: one JSON argv per tool run (simulator only), so tests can prove what the
    collection ran -- e.g. never v3_mem_reset."""
    with contextlib.suppress(OSError):
        fd = os.open(os.path.join(sim.root, "tools.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, os.fsencode(json.dumps([tool] + [os.fsdecode(a) for a in args]) + "\n"))
        finally:
            os.close(fd)


def log_target(sim, tool, args):
    """ROOT/targets.log: one JSON object per tool run that reached a VM -- its argv, the slot and
    the name of the VM there when the tool acted, and $V3SIM_CALLER -- so tests can prove that a
    run acted only on the VMs it meant, whatever ran in between (tools.log is written before the
    tool waits for the state lock, so it cannot tell what a slot held when the tool acted)."""
    if sim.target is None:
        return
    entry = {"argv": [tool] + [os.fsdecode(a) for a in args], "slot": sim.target[0], "vm": sim.target[1],
             "caller": os.environ.get("V3SIM_CALLER")}
    with contextlib.suppress(OSError):
        fd = os.open(os.path.join(sim.root, "targets.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, os.fsencode(json.dumps(entry, sort_keys=True) + "\n"))
        finally:
            os.close(fd)


def run_hook(sim, hook):
    """A ``hook`` fault: other tool runs, as a person at the console would make them, before this
    tool acts (after its caller last read /proc): each command's tool from ROOT/bin, bounded."""
    import subprocess
    env = dict(os.environ, V3VEE_SIM_ROOT=sim.root, V3SIM_CALLER="hook")
    for command in hook["run"]:
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([os.path.join(sim.bin_dir, command[0])] + command[1:], env=env, check=False, timeout=60,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_tool(sim, tool, argv0, args):
    """One tool invocation: a hung host or injected crash/hang faults first, then hooks, then the tool."""
    with sim.locked():
        hung = sim.kernel.get("hung")
        fault = None if hung else sim.take_fault(tool, ("crash", "hang"))
        hook = None if hung else sim.take_fault(tool, ("hook",))
    if hung:
        IO.err(HUNG_MESSAGE % hung)
        return HUNG_EXIT
    if fault and fault["kind"] == "crash":
        die_by_signal()
    hang = fault if fault and fault["kind"] == "hang" else None
    if hang and hang.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)       # only SIGKILL ends it (the kill path)
    if hang and not hang.get("after_acting"):
        # Killed during a hang before the tool acts, the tool has changed nothing.
        hang_now(sim, tool, hang, "before acting")
    if hook:
        run_hook(sim, hook)
    try:
        return TOOL_FUNCS[tool](sim, tool, argv0, args)
    except ToolExit as done:
        return done.code
    finally:
        log_target(sim, tool, args)
        if hang and hang.get("after_acting"):
            # The change is in /proc, the caller has not seen the tool finish (killed here, it never does).
            hang_now(sim, tool, hang, "after acting")


def hang_now(sim, tool, fault, when):
    """Sleep for a hang fault, outside the state lock; a hang of more than 0 s is logged as it
    starts, so a test knows the tool is now held there."""
    seconds = fault.get("seconds", 0)
    if seconds > 0:
        IO.flush()
        sim.klog("v3sim fault injection: %s hangs %g s %s (pid %d)" % (tool, seconds, when, os.getpid()))
    time.sleep(seconds)


# --------------------------------------------------------------------------------------
# Simulator-only controls: "v3sim <command>"
# --------------------------------------------------------------------------------------

HUNG_EXIT = 124
HUNG_MESSAGE = ("v3sim: THE SIMULATED HOST IS HUNG since %s; on a real host every command would hang "
                "now. Nothing runs until 'v3sim reboot'.\n")

CONTROL_HELP = """usage: v3sim <command> [options]

Simulator-only controls of a simulated Palacios host (never a real tool name).

  install --root DIR [--python PATH] [--check] [--json]
                    copy this program to DIR/lib, link DIR/bin/<tool> and DIR/bin/v3sim
  status [--json]   module loaded?, options, host, boot config, VMs, pools, faults
  host [--cpus N] [--nodes N] [--memory-mb MB] [--compiled-block-size BYTES]
       [--features LIST] [--migration-stream broken|works] [--check] [--json]
                    show or change the simulated hardware/build (module must be unloaded);
                    features: checkpoint, migration (LIVE_MIGRATION, needs checkpoint);
                    the migration stream is broken (observed on Linux 3.19) or works
  boot [--load|--no-load] [--cpu-list L] [--allow-devmem N] [--options S] [--check] [--json]
                    what a reboot loads (like modules-load.d); '' clears a parameter
  load [--cpu-list L] [--allow-devmem N] [--options S]
                    insmod v3vee.ko with those module parameters
  unload            rmmod v3vee
  reboot            power-cycle the simulated host; then load per boot config and run
                    ROOT/boot.d/* in name order
  fault add TOOL refuse|crash|hang [--seconds N] [--count K] [--after K] [--ignore-sigterm] [--after-acting]
                    hang: sleep N s before acting (killed then, it changed nothing);
                    --after-acting: sleep after acting instead, before exiting;
                    --ignore-sigterm: and ignore SIGTERM meanwhile;
                    --after K: the first K runs of TOOL pass, the fault hits the next
  fault add TOOL hook --run 'TOOL ARG... [; TOOL ARG...]' [--count K] [--after K]
                    before TOOL acts, run those tools (ROOT/bin, V3SIM_CALLER=hook), as a
                    person at the console would between the caller's read and its action
  fault clear [TOOL]
  fault list [--json]
  vm-error SLOT     make a VM's vcores fail (state ERROR)
  stream-write SLOT STREAM TEXT
                    the guest writes TEXT to a stream (kept, up to 4096 bytes, until a
                    v3_stream client reads it)
  build-image IN.xml OUT.img [tag=value ...]
                    pack a guest image like utils/guest_creator (files relative to CWD)
  dmesg             print the simulated kernel log
"""


def say(text=""):
    IO.out(text + "\n")


def control_error(text, code=1):
    IO.err("v3sim: %s\n" % text)
    return code


def pop_flag(args, flag):
    if flag in args:
        args.remove(flag)
        return True
    return False


def pop_opts(args, names):
    """Parse "--name value" / "--name=value" pairs; returns (dict, leftovers) or raises."""
    values, rest, i = {}, [], 0
    while i < len(args):
        arg = args[i]
        key, eq, inline = arg.partition("=")
        if key in names:
            if eq:
                values[key] = inline
            elif i + 1 < len(args):
                i += 1
                values[key] = args[i]
            else:
                raise ValueError("%s needs a value" % key)
        else:
            rest.append(arg)
        i += 1
    return values, rest


def int_arg(values, key):
    try:
        return int(values[key], 0)
    except ValueError:
        raise ValueError("%s: not a number: %r" % (key, values[key])) from None


def status_dict(sim):
    mod = sim.module
    vms, pools = [], []
    if mod:
        for slot in sorted(mod["vms"], key=int):
            vm = mod["vms"][slot]
            vms.append({"slot": int(slot), "name": vm["name"], "device": "/dev/v3-vm%s" % slot,
                        "state": "ghost" if vm.get("ghost") else DETAIL_STATE_NAMES.get(vm["state"], "UNKNOWN"),
                        "vcores": len(vm["vcores"]),
                        "mem_bytes": vm["mem_bytes"], "regions": vm_regions(vm),
                        "restored_from": vm.get("restored_from")})
        for zone in mod["zones"]:
            for pool in sorted(zone["pools"], key=lambda p: p["base"]):
                pools.append({"node": zone["node"], "base": pool["base"], "base_hex": "0x%x" % pool["base"],
                              "order": pool["order"], "size": 1 << pool["order"],
                              "free": pool_free(zone, pool), "kind": pool["kind"]})
    host = {k: v for k, v in sim.host.items() if k != "boot"}
    return {
        "root": sim.root, "loaded": bool(mod), "host": host, "boot": sim.host["boot"],
        "module": None if not mod else {
            "cpu_list": mod["params"]["cpu_list"], "allow_devmem": mod["params"]["allow_devmem"],
            "options": mod["params"]["options"], "runtime_block_size": mod["runtime_block"],
            "cpus": mod["cpus"]},
        "vms": vms, "pools": pools,
        "reserved_bytes": sum(p["size"] for p in pools if p["kind"] != "seed"),
        "reserved_free_bytes": sum(p["free"] for p in pools if p["kind"] != "seed"),
        "offline_blocks": sim.kernel["offline_blocks"], "hung": sim.kernel.get("hung"),
        "boot_count": sim.kernel["boot_count"], "faults": sim.faults}


def cmd_install(args):
    check, as_json = pop_flag(args, "--check"), pop_flag(args, "--json")
    values, rest = pop_opts(args, ("--root", "--python"))
    if rest or "--root" not in values:
        return control_error("usage: v3sim install --root DIR [--python PATH] [--check] [--json]", 2)
    root = os.path.abspath(values["--root"])
    with open(os.path.realpath(__file__), "rb") as fh:
        program = fh.read()
    # The #! line names the interpreter that runs the install unless --python says otherwise
    # (the file's own "#!/usr/bin/env python" may name nothing on the target).
    python = values.get("--python") or sys.executable
    program = b"#!" + os.fsencode(python) + program[program.index(b"\n"):]
    changed = []
    target = os.path.join(root, "lib", "v3sim.py")
    try:
        with open(target, "rb") as fh:
            same = fh.read() == program and os.stat(target).st_mode & 0o777 == 0o755
    except OSError:
        same = False
    if not same:
        changed.append(target)
    links = {os.path.join(root, "bin", name): "../lib/v3sim.py" for name in TOOLS + (CONTROL,)}
    for link, dest in links.items():
        if not (os.path.islink(link) and os.readlink(link) == dest):
            changed.append(link)
    dirs = [os.path.join(root, d) for d in ("bin", "lib", "state", "dev", "proc", "boot.d")]
    changed.extend(d for d in dirs if not os.path.isdir(d))
    if not check:
        for directory in dirs:
            os.makedirs(directory, exist_ok=True)
        if not same:
            atomic_write(target, program, mode=0o755)
        for link, dest in links.items():
            if not (os.path.islink(link) and os.readlink(link) == dest):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(link)
                os.symlink(dest, link)
        sim = Sim(root)
        with sim.locked():
            if not os.path.exists(os.path.join(sim.state_dir, "kernel.json")):
                changed.append(os.path.join(sim.state_dir, "kernel.json"))
            if not os.path.exists(sim.kmsg_path):
                open(sim.kmsg_path, "a").close()
            sim.commit()
    if as_json:
        say(json.dumps({"changed": bool(changed), "root": root, "paths": changed}, sort_keys=True))
    elif changed:
        say("v3sim: %s %s" % ("would install into" if check else "installed into", root))
    else:
        say("v3sim: %s is up to date" % root)
    return 0


def cmd_status(sim, args):
    as_json = pop_flag(args, "--json")
    if args:
        return control_error("usage: v3sim status [--json]", 2)
    with sim.locked(write=False):
        info = status_dict(sim)
    if as_json:
        say(json.dumps(info, sort_keys=True, ensure_ascii=True))
        return 0
    host = info["host"]
    say("root:     %s" % info["root"])
    say("host:     %d cpus, %d node(s) x %d MiB, compiled mem_block_size %d, features: %s, "
        "migration stream: %s" % (host["cpus"], host["nodes"], host["memory_mb"], host["compiled_block_size"],
                                  ",".join(host["features"]) or "none", host["migration_stream"]))
    boot = info["boot"]
    say("boot:     %s" % ("load v3vee (cpu_list=%s allow_devmem=%s options=%s)" % (
        boot["cpu_list"], boot["allow_devmem"], boot["options"]) if boot["load"] else "do not load v3vee"))
    if info["module"]:
        mod = info["module"]
        say("module:   loaded (cpu_list=%s allow_devmem=%s options=%s run-time mem_block_size=%d)" % (
            mod["cpu_list"], mod["allow_devmem"], mod["options"], mod["runtime_block_size"]))
    else:
        say("module:   not loaded")
    for vm in info["vms"]:
        say("vm:       %s %s %s %d vcores %d bytes"
            % (vm["device"], vm["name"], vm["state"], vm["vcores"], vm["mem_bytes"]))
    for pool in info["pools"]:
        say("pool:     node %d %s %s size=%d free=%d"
            % (pool["node"], pool["base_hex"], pool["kind"], pool["size"], pool["free"]))
    say("offline:  %s" % (" ".join("memory%d" % b for b in info["offline_blocks"]) or "none"))
    if info["hung"]:
        say("HUNG:     since %s (only 'v3sim reboot' recovers)" % info["hung"])
    for tool, queue in sorted(info["faults"].items()):
        for fault in queue:
            say("fault:    %s %s x%d" % (tool, fault["kind"], fault["count"]))
    return 0


def cmd_host(sim, args):
    check, as_json = pop_flag(args, "--check"), pop_flag(args, "--json")
    values, rest = pop_opts(args, ("--cpus", "--nodes", "--memory-mb", "--compiled-block-size", "--features",
                                   "--migration-stream"))
    if rest:
        return control_error("host: unexpected argument %r" % rest[0], 2)
    with sim.locked(write=not check):
        want = {k: v for k, v in sim.host.items() if k != "boot"}
        for opt, key in (("--cpus", "cpus"), ("--nodes", "nodes"), ("--memory-mb", "memory_mb"),
                         ("--compiled-block-size", "compiled_block_size")):
            if opt in values:
                want[key] = int_arg(values, opt)
        if "--features" in values:
            want["features"] = sorted({f.strip() for f in values["--features"].split(",") if f.strip()})
        if "--migration-stream" in values:
            want["migration_stream"] = values["--migration-stream"]
        problems = validate_host(want)
        if problems:
            return control_error("; ".join(problems), 2)
        current = {k: v for k, v in sim.host.items() if k != "boot"}
        changed = want != current
        if changed and sim.module and not check:
            return control_error("cannot change the simulated host while the v3vee module is loaded "
                                 "(run 'v3sim unload' first)")
        if changed and not check:
            layout = (want["nodes"], want["memory_mb"]) != (current["nodes"], current["memory_mb"])
            sim.host.update(want)
            if layout:
                sim.kernel["offline_blocks"] = []     # different memory: nothing is offline
            sim.commit()
        shown = want
    if as_json:
        say(json.dumps({"changed": changed, "host": shown}, sort_keys=True))
    else:
        say(dump_json(shown).rstrip("\n"))
    return 0


def cmd_boot(sim, args):
    check, as_json = pop_flag(args, "--check"), pop_flag(args, "--json")
    load = True if pop_flag(args, "--load") else (False if pop_flag(args, "--no-load") else None)
    values, rest = pop_opts(args, ("--cpu-list", "--allow-devmem", "--options"))
    if rest:
        return control_error("boot: unexpected argument %r" % rest[0], 2)
    with sim.locked(write=not check):
        want = dict(sim.host["boot"])
        if load is not None:
            want["load"] = load
        for opt, key in (("--cpu-list", "cpu_list"), ("--allow-devmem", "allow_devmem"), ("--options", "options")):
            if opt in values:
                want[key] = values[opt] if values[opt] != "" else None
        changed = want != sim.host["boot"]
        if changed and not check:
            sim.host["boot"] = want
            sim.commit()
    if as_json:
        say(json.dumps({"changed": changed, "boot": want}, sort_keys=True))
    else:
        say(dump_json(want).rstrip("\n"))
    return 0


def cmd_load(sim, args):
    values, rest = pop_opts(args, ("--cpu-list", "--allow-devmem", "--options"))
    if rest:
        return control_error("load: unexpected argument %r" % rest[0], 2)
    with sim.locked():
        code = module_load(sim, values.get("--cpu-list"), values.get("--allow-devmem"), values.get("--options"))
        sim.commit()
    return code


def cmd_unload(sim, args):
    if args:
        return control_error("usage: v3sim unload", 2)
    with sim.locked():
        code = module_unload(sim)
        sim.commit()
    return code


def cmd_reboot(sim, args):
    if args:
        return control_error("usage: v3sim reboot", 2)
    with sim.locked():
        sim.kernel = fresh_kernel(sim.kernel["boot_count"] + 1)
        sim.klog("v3sim: simulated host booted (boot %d)" % sim.kernel["boot_count"], raw=True)
        boot = sim.host["boot"]
        if boot["load"] and module_load(sim, boot["cpu_list"], boot["allow_devmem"], boot["options"]):
            sim.klog("v3sim: loading v3vee at boot failed", raw=True)
        sim.commit()
    if os.path.isdir(sim.boot_dir):
        import subprocess
        env = dict(os.environ, V3VEE_SIM_ROOT=sim.root,
                   PATH=sim.bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"))
        for name in sorted(os.listdir(sim.boot_dir)):
            path = os.path.join(sim.boot_dir, name)
            if name.startswith(".") or not os.path.isfile(path) or not os.access(path, os.X_OK):
                continue
            IO.flush()
            status = subprocess.run([path], env=env, cwd=sim.root, check=False).returncode
            if status:
                IO.err("v3sim: boot.d/%s exited with status %d\n" % (name, status))
    return 0


def hook_commands(text):
    """'v3_free 1 ; v3_create img x' -> [["v3_free", "1"], ["v3_create", "img", "x"]], or None
    when a command is not a v3 tool."""
    import shlex
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    commands = [[]]
    for word in lexer:
        if word == ";":
            commands.append([])
        else:
            commands[-1].append(word)
    commands = [command for command in commands if command]
    if not commands or any(command[0] not in TOOLS for command in commands):
        return None
    return commands


def cmd_fault(sim, args):
    as_json = pop_flag(args, "--json")
    if not args or args[0] not in ("add", "clear", "list"):
        return control_error("usage: v3sim fault add|clear|list ...", 2)
    action, args = args[0], args[1:]
    with sim.locked():
        if action == "add":
            ignore_sigterm = pop_flag(args, "--ignore-sigterm")
            after_acting = pop_flag(args, "--after-acting")
            values, rest = pop_opts(args, ("--seconds", "--count", "--after", "--run"))
            if len(rest) != 2 or rest[0] not in TOOLS or rest[1] not in ("refuse", "crash", "hang", "hook"):
                return control_error("usage: v3sim fault add TOOL refuse|crash|hang|hook [--seconds N] [--count K]"
                                     " [--after K] [--ignore-sigterm] [--after-acting] [--run COMMANDS]"
                                     " (TOOL one of %s)" % ", ".join(TOOLS), 2)
            for flag, given in (("--ignore-sigterm", ignore_sigterm), ("--after-acting", after_acting)):
                if given and rest[1] != "hang":
                    return control_error("%s goes with a hang fault" % flag, 2)
            if ("--run" in values) != (rest[1] == "hook"):
                return control_error("a hook fault needs --run 'TOOL ARG... [; TOOL ARG...]', and only it", 2)
            count = int_arg(values, "--count") if "--count" in values else 1
            after = int_arg(values, "--after") if "--after" in values else 0
            seconds = float(values.get("--seconds", "0"))
            if count < 1 or after < 0 or seconds < 0:
                return control_error("--count must be >= 1, --after >= 0 and --seconds >= 0", 2)
            fault = {"kind": rest[1], "count": count, "seconds": seconds}
            if after:
                fault["after"] = after
            if ignore_sigterm:
                fault["ignore_sigterm"] = True
            if after_acting:
                fault["after_acting"] = True
            if "--run" in values:
                commands = hook_commands(values["--run"])
                if commands is None:
                    return control_error("--run: every command is a v3 tool and its arguments, commands separated "
                                         "by ';' (tools: %s)" % ", ".join(TOOLS), 2)
                fault["run"] = commands
            sim.faults.setdefault(rest[0], []).append(fault)
            sim.save_state()
        elif action == "clear":
            if len(args) > 1 or (args and args[0] not in TOOLS):
                return control_error("usage: v3sim fault clear [TOOL]", 2)
            if args:
                sim.faults.pop(args[0], None)
            else:
                sim.faults.clear()
            sim.save_state()
        faults = sim.faults
    if action == "list":
        if as_json:
            say(json.dumps(faults, sort_keys=True))
        else:
            for tool, queue in sorted(faults.items()):
                for fault in queue:
                    flags = " ignore-sigterm" if fault.get("ignore_sigterm") else ""
                    flags += " after-acting" if fault.get("after_acting") else ""
                    flags += " after=%d" % fault["after"] if fault.get("after") else ""
                    flags += " run=%s" % " ; ".join(" ".join(c) for c in fault["run"]) if fault.get("run") else ""
                    say("%s %s count=%d seconds=%g%s" % (tool, fault["kind"], fault["count"], fault["seconds"], flags))
    return 0


def cmd_vm_error(sim, args):
    if len(args) != 1 or not args[0].isdigit():
        return control_error("usage: v3sim vm-error SLOT", 2)
    with sim.locked():
        vm = sim.vm(int(args[0])) if sim.module else None
        if vm is None or vm.get("ghost"):
            return control_error("no VM in slot %s" % args[0])
        halt_vm(vm, VM_ERROR)
        sim.klog("v3sim: simulated vcore failure, VM is in the error state", vm=vm["name"])
        sim.commit()
    return 0


def cmd_stream_write(sim, args):
    if len(args) != 3 or not args[0].isdigit():
        return control_error("usage: v3sim stream-write SLOT STREAM TEXT", 2)
    with sim.locked():
        vm = sim.vm(int(args[0])) if sim.module else None
        stream = vm.get("streams", {}).get(args[1]) if vm else None
        if stream is None:
            return control_error("no stream %r on a VM in slot %s" % (args[1], args[0]))
        # The kernel's ring buffer: what does not fit is dropped (iface-stream.c ringbuf_write).
        data = os.fsencode(args[2]).decode("latin-1")
        stream["buffer"] += data[:max(0, STREAM_BUFFER - len(stream["buffer"]))]
        sim.save_state()
    return 0


def cmd_build_image(args):
    if len(args) < 2:
        return control_error("usage: v3sim build-image IN.xml OUT.img [tag=value ...]", 2)
    pairs = []
    for cfg in args[2:]:
        tag, sep, value = cfg.partition("=")
        if not sep:
            return control_error("invalid option format: %s" % cfg, 2)
        pairs.append((tag, value))
    img, failure = build_image_from_xml(args[0], pairs, False, IO.out)
    if failure:
        return control_error(failure[2].rstrip("\n"))
    atomic_write(os.path.abspath(args[1]), img)
    say("Guest Image Created (size=%d)" % len(img))
    return 0


def cmd_dmesg(sim, args):
    if args:
        return control_error("usage: v3sim dmesg", 2)
    with contextlib.suppress(FileNotFoundError):
        with open(sim.kmsg_path, "rb") as fh:
            IO.out(fh.read())
    return 0


def control_main(sim, args):
    if not args or args[0] in ("-h", "--help", "help"):
        IO.out(CONTROL_HELP)
        return 0 if args else 2
    command, args = args[0], list(args[1:])
    try:
        if command == "install":
            return cmd_install(args)
        if command == "build-image":
            return cmd_build_image(args)
        handlers = {"status": cmd_status, "host": cmd_host, "boot": cmd_boot, "load": cmd_load,
                    "unload": cmd_unload, "reboot": cmd_reboot, "fault": cmd_fault,
                    "vm-error": cmd_vm_error, "dmesg": cmd_dmesg, "stream-write": cmd_stream_write}
        if command not in handlers:
            return control_error("unknown command %r (see v3sim --help)" % command, 2)
        if command in ("load", "unload", "vm-error", "stream-write"):
            with sim.locked(write=False):
                hung = sim.kernel.get("hung")
            if hung:
                IO.err(HUNG_MESSAGE % hung)
                return HUNG_EXIT
        return handlers[command](sim, args)
    except ValueError as exc:
        return control_error(str(exc), 2)


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

def main(argv=None):
    argv = sys.argv if argv is None else argv
    argv0 = argv[0]
    name = os.path.basename(argv0)
    if name.endswith(".py"):
        name = name[:-3]
    # Root: parent of the directory holding argv[0] -- abspath, symlinks NOT resolved.
    root = os.environ.get("V3VEE_SIM_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(argv0)))
    sim = Sim(os.path.abspath(root))
    try:
        if name in TOOLS:
            log_tool(sim, name, argv[1:])
            code = run_tool(sim, name, argv0, argv[1:])
        elif name == CONTROL:
            code = control_main(sim, argv[1:])
        else:
            IO.err("v3sim: do not know how to behave as %r (tools: %s, controls: v3sim)\n"
                   % (name, ", ".join(TOOLS)))
            code = 2
    except PermissionError as exc:
        # The real tools would fail to open the root-only device nodes; the simulator
        # cannot even reach its state.  Say so plainly.
        IO.flush()
        IO.err("v3sim: %s: %s (the simulated host under %s needs write access to its state)\n"
               % (exc.filename, exc.strerror, sim.root))
        code = 1
    IO.flush()
    return code & 0xFF


if __name__ == "__main__":
    sys.exit(main())
