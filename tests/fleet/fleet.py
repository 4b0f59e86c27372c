"""A fleet of simulated Palacios hosts on this one machine, reached by Ansible over real SSH.

Each host ``v3h<i>`` is a network namespace joined to the root namespace by a veth pair,
plus a private mount namespace in which per-host directories from the work directory are
bind-mounted over the normal Palacios paths (``/etc/v3vee``, ``/var/lib/v3vee``,
``/opt/v3vee-sim``, ...), plus its own sshd. Roles and playbooks therefore write to the
normal paths and each host sees only its own simulated Palacios and inventory.

    python3 fleet.py up     --workdir DIR [--hosts N] [--routed]
    python3 fleet.py down   --workdir DIR
    python3 fleet.py reboot --workdir DIR --host v3h2
    python3 fleet.py exec   --workdir DIR --host v3h1 -- CMD...

Requires root. Every resource is recorded in DIR/fleet-state.json *before* it is created,
so ``down`` can undo a partial ``up``. See tests/fleet/README.md.
"""

import argparse
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# Directories each host must see as its own. The roles write to the normal paths; anything
# a playbook may write outside these must be added here, or the hosts would share it.
# seed=False: the host starts with an empty directory (a fresh host has no Palacios).
# seed=True: the host starts with a copy of this machine's directory (minus v3vee files),
# so the system files a real host has stay visible.
# /etc/profile.d is per-host as a whole directory, not just v3vee.sh: a bind-mounted file
# cannot be replaced by rename(2) (EBUSY), and Ansible's copy/template write by rename.
PER_HOST_PATHS = (
    ("/etc/v3vee", False),
    ("/var/lib/v3vee", False),
    ("/opt/v3vee-sim", False),
    ("/srv/v3vee-demo", False),            # playbooks/demo.yml's guests (docs commands test)
    ("/etc/profile.d", True),
    ("/etc/modules-load.d", True),
    ("/etc/modprobe.d", True),
    ("/etc/systemd/system", True),
)
PER_HOST_DIRS = tuple(path for path, _seed in PER_HOST_PATHS)
# Names never copied into a seeded directory: they belong to Palacios, which a fresh host lacks.
SEED_EXCLUDE_PREFIXES = ("v3vee", "palacios")

HOST_PREFIX = "v3h"
# Several fleets can exist side by side (e.g. a benchmark fleet while a molecule fleet runs)
# when each has its own name (V3VEE_FLEET_NAME, at most 9 characters: veth names are
# limited to 15) and network (V3VEE_FLEET_NETWORK).
FLEET_NAME = os.environ.get("V3VEE_FLEET_NAME") or "v3fleet"
NETNS_PREFIX = FLEET_NAME + "-"      # network namespace of v3h1: v3fleet-v3h1
VETH_PREFIX = FLEET_NAME + "-h"      # root side of v3h1's veth: v3fleet-h1 (inside: eth0)
# One /24 inside 198.18.0.0/15 (RFC 2544 benchmarking: never routed on the Internet), cut
# into /30s: host i gets /30 number i, root side .4i+1, host .4i+2. /30 number 0 is unused.
DEFAULT_NETWORK = os.environ.get("V3VEE_FLEET_NETWORK") or "198.18.231.0/24"
MAX_HOSTS = 63

SSHD = "/usr/sbin/sshd"
SIMULATOR_CONTROL = "/opt/v3vee-sim/bin/v3sim"
REQUIRED_TOOLS = ("ip", "ssh", "ssh-keygen", "unshare", "nsenter", "mount")
SSHD_PRIVSEP_DIR = "/run/sshd"  # compiled into Debian's sshd; it refuses to start without it
STATE_FILE = "fleet-state.json"
SSHD_START_TIMEOUT = 15.0
KILL_TIMEOUT = 5.0

FLEET_PY = Path(__file__).resolve()


class FleetError(Exception):
    """A failure the user can act on; main() prints it without a traceback."""


# ---------------------------------------------------------------------------------------------
# small helpers

def run(argv, check=True, **kwargs):
    """Run argv (never through a shell), capturing output; raise FleetError on failure."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False, **kwargs)
    if check and proc.returncode != 0:
        raise FleetError("command failed (rc=%d): %s\n%s%s" % (
            proc.returncode, shlex.join(argv), proc.stdout, proc.stderr))
    return proc


def log(msg):
    print("fleet: " + msg, flush=True)


def host_names(count):
    return ["%s%d" % (HOST_PREFIX, i) for i in range(1, count + 1)]


def host_index(name):
    return int(name[len(HOST_PREFIX):])


def host_root(workdir, name):
    """Directory holding the files host `name` sees at the PER_HOST_PATHS."""
    return workdir / "hosts" / name / "root"


def ns_inode(pid, kind):
    """'mnt:[4026531841]'-style identity of a process's namespace, or None if it is gone."""
    try:
        return os.readlink("/proc/%d/ns/%s" % (pid, kind))
    except OSError:
        return None


def addresses(network, index):
    """(root side, host side, prefix length) of host number `index` in `network`."""
    base = network.network_address + 4 * index
    return str(base + 1), str(base + 2), 30


# ---------------------------------------------------------------------------------------------
# state: every resource is recorded before it is created, so `down` can undo a partial `up`

class State:
    def __init__(self, workdir):
        self.path = workdir / STATE_FILE
        self.data = {"workdir_created": False, "created_paths": [], "hosts": {}}

    @classmethod
    def load(cls, workdir):
        state = cls(workdir)
        if state.path.exists():
            state.data = json.loads(state.path.read_text())
            return state
        return None

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def host(self, name):
        return self.data["hosts"].setdefault(name, {})

    def record_path(self, path):
        self.data["created_paths"].append(str(path))
        self.save()


# ---------------------------------------------------------------------------------------------
# preflight

def preflight():
    if os.geteuid() != 0:
        raise FleetError("must run as root (network namespaces, bind mounts, sshd on port 22)")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if not os.access(SSHD, os.X_OK):
        missing.append(SSHD + " (package openssh-server)")
    if missing:
        raise FleetError("missing tools: %s; install iproute2, openssh-client, openssh-server, "
                         "util-linux" % ", ".join(missing))


def check_network_free(network):
    """Refuse a network that overlaps any route or address on this machine (default aside)."""
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    addrs = json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    taken = [(r["dst"], "route via %s" % r.get("dev", "?")) for r in routes
             if r.get("dst") not in (None, "default")]
    for link in addrs:
        for info in link.get("addr_info", []):
            taken.append(("%s/%s" % (info["local"], info["prefixlen"]),
                          "address on %s" % link["ifname"]))
    for dst, what in taken:
        if ipaddress.ip_network(dst, strict=False).overlaps(network):
            raise FleetError(
                "%s overlaps %s (%s). A fleet from an earlier run may still be up: run "
                "'fleet.py down' with its workdir, or pick another --network." % (
                    network, dst, what))


# ---------------------------------------------------------------------------------------------
# up

def make_mount_points(state):
    """Create missing mount points (and /run/sshd) on the real root fs, empty, recorded."""
    for path in (SSHD_PRIVSEP_DIR,) + PER_HOST_DIRS:
        missing = []
        for candidate in [Path(path)] + list(Path(path).parents):
            if candidate.exists():
                break
            missing.append(candidate)
        for directory in reversed(missing):
            state.record_path(directory)
            directory.mkdir(mode=0o755)
            log("created %s (empty) on the root filesystem" % directory)


def seed_ignore(_directory, names):
    return [n for n in names if n.startswith(SEED_EXCLUDE_PREFIXES)]


def make_host_tree(workdir, name):
    root = host_root(workdir, name)
    for path, seed in PER_HOST_PATHS:
        target = root / path.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        if seed and os.path.isdir(path):
            shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True, ignore=seed_ignore)
        target.chmod(0o755)


def write_sshd_config(workdir, name, address):
    hostdir = workdir / "hosts" / name
    key = hostdir / "ssh_host_ed25519_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-" + name, "-f", str(key)])
    config = hostdir / "sshd_config"
    config.write_text("\n".join([
        "# sshd of fleet host %s, generated by tests/fleet/fleet.py" % name,
        "ListenAddress %s" % address,
        "Port 22",
        "HostKey %s" % key,
        "PidFile %s" % (hostdir / "sshd.pid"),
        "AuthorizedKeysFile %s" % (workdir / "ssh" / "authorized_keys"),
        "PermitRootLogin prohibit-password",
        "AllowUsers root",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # the workdir may live under /tmp (mode 1777), which StrictModes rejects
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PermitUserEnvironment no",
        "Subsystem sftp internal-sftp",
        "MaxStartups 100:30:200",
        "MaxSessions 100",
        "LogLevel VERBOSE",
        "",
    ]))
    run([SSHD, "-t", "-f", str(config)])
    return config


def create_network(state, name, network, routed=False):
    index = host_index(name)
    gateway, address, prefix = addresses(network, index)
    netns, veth = NETNS_PREFIX + name, "%s%d" % (VETH_PREFIX, index)
    host = state.host(name)
    host.update({"netns": netns, "veth": veth, "address": address, "gateway": gateway})
    state.save()
    run(["ip", "netns", "add", netns])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
    for ns_args, dev, local in (([], veth, gateway), (["-n", netns], "eth0", address)):
        # no IPv6 on the pair: the only traffic is IPv4 between these two addresses
        run(["ip"] + ns_args + ["link", "set", dev, "addrgenmode", "none"])
        run(["ip"] + ns_args + ["addr", "add", "%s/%d" % (local, prefix), "dev", dev])
        run(["ip"] + ns_args + ["link", "set", dev, "up"])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])
    # No default route in the namespace: a host can reach only its /30 (the controller) ...
    if routed:
        # ... and, with --routed, the other hosts of this fleet (live migration between hosts):
        # forwarding is switched on for this veth only (the machine's ip_forward stays off;
        # IPv4 decides by the receiving interface), and goes when the veth does.
        Path("/proc/sys/net/ipv4/conf/%s/forwarding" % veth).write_text("1\n")
        run(["ip", "-n", netns, "route", "add", str(network), "via", gateway])
    return address


def start_sshd(state, workdir, name):
    hostdir = workdir / "hosts" / name
    host = state.host(name)
    argv = ["ip", "netns", "exec", host["netns"],
            "unshare", "--mount", "--uts", "--propagation", "private", "--",
            sys.executable, str(FLEET_PY), "_host-init", "--workdir", str(workdir),
            "--host", name]
    with open(hostdir / "sshd.log", "ab") as logfile:
        # ip netns exec, unshare and _host-init all exec(): the child's pid is sshd's pid.
        # Output goes to the log, never to our stdout: a caller waiting for our output
        # (Ansible's command module) must not wait for sshd.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logfile,
                                stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
    host["pid"] = proc.pid
    state.save()


def host_init(args):
    """Runs inside the host's fresh mount+UTS namespaces: bind the per-host paths, exec sshd."""
    workdir = Path(args.workdir)
    root = host_root(workdir, args.host)
    for path in PER_HOST_DIRS:
        run(["mount", "--bind", str(root / path.lstrip("/")), path])
    socket.sethostname(args.host)
    config = workdir / "hosts" / args.host / "sshd_config"
    log_file = workdir / "hosts" / args.host / "sshd.log"
    os.execv(SSHD, [SSHD, "-D", "-f", str(config), "-E", str(log_file)])


def wait_for_sshd(state, workdir, name):
    host = state.host(name)
    deadline = time.monotonic() + SSHD_START_TIMEOUT
    while True:
        if is_gone(host["pid"]):
            raise FleetError("sshd of %s exited; its log:\n%s" % (
                name, tail(workdir / "hosts" / name / "sshd.log")))
        try:
            with socket.create_connection((host["address"], 22), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise FleetError("sshd of %s did not answer on %s:22 within %ds; its log:\n%s" % (
                name, host["address"], SSHD_START_TIMEOUT,
                tail(workdir / "hosts" / name / "sshd.log")))
        time.sleep(0.05)
    host["mntns"] = ns_inode(host["pid"], "mnt")
    state.save()


def tail(path, lines=20):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return "(%s)" % exc


def write_client_files(state, workdir, names):
    sshdir = workdir / "ssh"
    known = []
    for name in names:
        host = state.host(name)
        pub = (workdir / "hosts" / name / "ssh_host_ed25519_key.pub").read_text().split()
        known.append("%s,%s %s %s" % (name, host["address"], pub[0], pub[1]))
    (sshdir / "known_hosts").write_text("\n".join(known) + "\n")

    lines = ["# ssh client config of the fleet in %s, generated by tests/fleet/fleet.py" % workdir]
    for name in names:
        lines += ["Host %s" % name, "    HostName %s" % state.host(name)["address"]]
    patterns = " ".join(names + [state.host(n)["address"] for n in names])
    lines += [
        "Host %s" % patterns,
        "    User root",
        "    Port 22",
        "    IdentityFile %s" % (sshdir / "id_ed25519"),
        "    IdentitiesOnly yes",
        "    UserKnownHostsFile %s" % (sshdir / "known_hosts"),
        "    GlobalKnownHostsFile /dev/null",
        "    StrictHostKeyChecking accept-new",
        "    PasswordAuthentication no",
        "    BatchMode yes",
        "    ConnectTimeout 10",
        "",
    ]
    (workdir / "ssh_config").write_text("\n".join(lines))


def write_inventory(state, workdir, names):
    q = json.dumps  # a JSON string is a valid YAML scalar, quoted where it needs to be
    lines = [
        "# Ansible inventory of the fleet in %s, generated by tests/fleet/fleet.py" % workdir,
        "palacios_hosts:",
        "  vars:",
        "    v3vee_fleet_workdir: %s" % q(str(workdir)),
        "    v3vee_fleet_tool: %s" % q(str(FLEET_PY)),
        "  hosts:",
    ]
    for name in names:
        host = state.host(name)
        lines += [
            "    %s:" % name,
            "      ansible_host: %s" % q(host["address"]),
            "      ansible_user: root",
            "      ansible_ssh_private_key_file: %s" % q(str(workdir / "ssh" / "id_ed25519")),
            "      ansible_ssh_common_args: %s" % q(
                "-F " + shlex.quote(str(workdir / "ssh_config"))),
            "      ansible_python_interpreter: /usr/bin/python3",
            "      v3vee_fleet_netns: %s" % q(host["netns"]),
        ]
    (workdir / "inventory.yml").write_text("\n".join(lines) + "\n")


def verify_host(state, workdir, name):
    """Over real SSH: the host has its own name and sees its own directories at the paths."""
    host = state.host(name)
    route = run(["ip", "-4", "route", "get", host["address"]]).stdout
    if (" dev %s " % host["veth"]) not in route:
        raise FleetError("%s (%s) is not routed via %s: %s" % (
            name, host["address"], host["veth"], route.strip()))
    remote = shlex.join(["stat", "-c", "%n %d %i", *PER_HOST_DIRS]) + " && uname -n"
    out = run(["ssh", "-F", str(workdir / "ssh_config"), name, "--", remote]).stdout.split("\n")
    count = len(PER_HOST_DIRS)
    seen = {line.split()[0]: tuple(map(int, line.split()[1:])) for line in out[:count]}
    for path in PER_HOST_DIRS:
        st = (host_root(workdir, name) / path.lstrip("/")).stat()
        if seen.get(path) != (st.st_dev, st.st_ino):
            raise FleetError("%s does not see its own %s (ssh reported %r)" % (
                name, path, seen.get(path)))
    if out[count] != name:
        raise FleetError("%s reports hostname %r" % (name, out[count]))


def up(args):
    preflight()
    workdir = Path(args.workdir).absolute()
    network = ipaddress.ip_network(args.network)
    if network.prefixlen > 24 or network.version != 4:
        raise FleetError("--network must be an IPv4 network of /24 or larger")
    if not 1 <= args.hosts <= MAX_HOSTS:
        raise FleetError("--hosts must be between 1 and %d" % MAX_HOSTS)
    if State.load(workdir):
        raise FleetError("%s holds a fleet (or the rest of a failed one); run "
                         "'fleet.py down --workdir %s' first" % (workdir, workdir))
    check_network_free(network)
    taken = [n for n in run(["ip", "netns", "list"]).stdout.split() if n.startswith(NETNS_PREFIX)]
    if taken:
        raise FleetError("network namespaces %s already exist (another fleet?)" % taken)

    started = time.monotonic()
    workdir_created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    state = State(workdir)
    state.data["workdir_created"] = workdir_created
    state.save()
    names = host_names(args.hosts)
    try:
        make_mount_points(state)
        if args.routed:
            # Forwarded traffic to an address of the fleet's network that no host has must
            # not follow this machine's default route out: it ends here.
            state.data["unreachable_route"] = str(network)
            state.save()
            run(["ip", "route", "add", "unreachable", str(network)])
        sshdir = workdir / "ssh"
        sshdir.mkdir(mode=0o700, exist_ok=True)
        key = sshdir / "id_ed25519"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "v3vee-fleet", "-f", str(key)])
        shutil.copyfile(key.with_suffix(".pub"), sshdir / "authorized_keys")
        for name in names:
            make_host_tree(workdir, name)
            address = create_network(state, name, network, args.routed)
            write_sshd_config(workdir, name, address)
            start_sshd(state, workdir, name)
        write_client_files(state, workdir, names)
        write_inventory(state, workdir, names)
        for name in names:
            wait_for_sshd(state, workdir, name)
        for name in names:
            verify_host(state, workdir, name)
    except (FleetError, OSError, subprocess.SubprocessError) as exc:
        if args.keep_on_failure:
            log("up failed; leaving everything in place (--keep-on-failure)")
        else:
            log("up failed; rolling back")
            teardown(workdir)
        raise FleetError("up failed: %s" % exc) from exc
    for name in names:
        host = state.host(name)
        log("%s  %s  netns %s  sshd pid %d" % (name, host["address"], host["netns"], host["pid"]))
    log("inventory: %s" % (workdir / "inventory.yml"))
    log("up: %d hosts in %.2fs" % (len(names), time.monotonic() - started))
    return 0


# ---------------------------------------------------------------------------------------------
# down

def host_pids(host):
    """Every process of a host: all of its network namespace and of its mount namespace."""
    pids = set()
    if host.get("netns") and host["netns"] in run(["ip", "netns", "list"]).stdout.split():
        pids.update(int(p) for p in run(["ip", "netns", "pids", host["netns"]]).stdout.split())
    if host.get("mntns"):
        for entry in os.listdir("/proc"):
            if entry.isdigit() and ns_inode(int(entry), "mnt") == host["mntns"]:
                pids.add(int(entry))
    pids.discard(os.getpid())
    return pids


def kill_all(pids):
    for sig, timeout in ((signal.SIGTERM, KILL_TIMEOUT), (signal.SIGKILL, KILL_TIMEOUT)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if not is_gone(p)}
            time.sleep(0.05)
        if not pids:
            return
    raise FleetError("processes %s survived SIGKILL" % sorted(pids))


def is_gone(pid):
    """True once a process has exited (a zombie has exited too: it only waits to be reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def other_fleets():
    """Network namespaces of fleet hosts that are up (any fleet name), after this one's are gone."""
    names = run(["ip", "netns", "list"]).stdout.split()
    return sorted(n for n in names if "-" + HOST_PREFIX in n
                  and n.rsplit("-" + HOST_PREFIX, 1)[1].isdigit())


def teardown(workdir):
    state = State.load(workdir)
    if state is None:
        log("nothing to do: no %s in %s" % (STATE_FILE, workdir))
        return
    for name, host in sorted(state.data["hosts"].items(), reverse=True):
        # The per-host bind mounts live only in the host's private mount namespace: they
        # are gone once its last process is.
        kill_all(host_pids(host))
        if host.get("veth") and run(["ip", "link", "show", host["veth"]], check=False).returncode == 0:
            run(["ip", "link", "del", host["veth"]])
        if host.get("netns") and host["netns"] in run(["ip", "netns", "list"]).stdout.split():
            run(["ip", "netns", "del", host["netns"]])
        log("%s removed" % name)
    if state.data.get("unreachable_route"):
        run(["ip", "route", "del", "unreachable", state.data["unreachable_route"]], check=False)
    others = other_fleets()
    for path in reversed(state.data["created_paths"]):
        if others:
            # Removing a directory that is a mount point in another mount namespace detaches
            # that mount there (Linux >= 3.18): another fleet's hosts would lose /etc/v3vee.
            log("left %s in place: other fleets are up (%s)" % (path, ", ".join(others)))
            continue
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log("left %s in place (%s)" % (path, exc.strerror))
    for created in ("hosts", "ssh", "ssh_config", "inventory.yml"):
        path = workdir / created
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    state.path.with_suffix(".tmp").unlink(missing_ok=True)
    state.path.unlink()
    if state.data["workdir_created"]:
        try:
            workdir.rmdir()
        except OSError:
            log("left %s in place: not empty" % workdir)


def down(args):
    preflight()
    started = time.monotonic()
    teardown(Path(args.workdir).absolute())
    log("down in %.2fs" % (time.monotonic() - started))
    return 0


# ---------------------------------------------------------------------------------------------
# reboot / exec: run a command in a host's namespaces, with the same view as its sshd

def enter_argv(workdir, name):
    state = State.load(workdir)
    host = state.data["hosts"].get(name) if state else None
    if not host:
        raise FleetError("no host %s in a fleet at %s" % (name, workdir))
    if not host.get("mntns") or ns_inode(host["pid"], "mnt") != host["mntns"]:
        raise FleetError("sshd of %s (pid %s) is not running; run down, then up" % (
            name, host.get("pid")))
    return ["nsenter", "--target", str(host["pid"]), "--mount", "--net", "--uts", "--"]


def exec_in_host(args):
    preflight()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise FleetError("exec needs a command after --")
    argv = enter_argv(Path(args.workdir).absolute(), args.host) + command
    return subprocess.run(argv, cwd="/", check=False).returncode


def reboot(args):
    preflight()
    argv = enter_argv(Path(args.workdir).absolute(), args.host) + [SIMULATOR_CONTROL, "reboot"]
    rc = subprocess.run(argv, cwd="/", check=False).returncode
    if rc != 0:
        raise FleetError("'%s reboot' on %s failed (rc=%d); is the simulator installed there "
                         "(roles/simulator)?" % (SIMULATOR_CONTROL, args.host, rc))
    log("%s rebooted" % args.host)
    return 0


# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="action", required=True)

    p = sub.add_parser("up", help="create the hosts, start their sshds, write the inventory")
    p.add_argument("--workdir", required=True)
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--network", default=DEFAULT_NETWORK,
                   help="IPv4 /24 (or larger) to cut into a /30 per host (default %(default)s)")
    p.add_argument("--routed", action="store_true",
                   help="let the hosts reach each other (only this machine otherwise)")
    p.add_argument("--keep-on-failure", action="store_true",
                   help="do not roll back a failed up (for debugging; run down afterwards)")
    p.set_defaults(func=up)

    p = sub.add_parser("down", help="remove everything up created (idempotent)")
    p.add_argument("--workdir", required=True)
    p.set_defaults(func=down)

    p = sub.add_parser("reboot", help="simulate a reboot of one host (v3sim reboot)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--host", required=True)
    p.set_defaults(func=reboot)

    p = sub.add_parser("exec", help="run a command in a host's namespaces")
    p.add_argument("--workdir", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=exec_in_host)

    p = sub.add_parser("_host-init", help=argparse.SUPPRESS)
    p.add_argument("--workdir", required=True)
    p.add_argument("--host", required=True)
    p.set_defaults(func=host_init)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except FleetError as exc:
        print("fleet: error: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
