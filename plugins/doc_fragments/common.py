# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options every v3vee.palacios module shares (plugins/module_utils/common.py common_argument_spec).
    DOCUMENTATION = r'''
options:
  tools_dir:
    description:
      - Directory holding the Palacios v3 tools (V(v3_create), V(v3_launch), ...).
      - When not set, the environment variable E(V3VEE_TOOLS_DIR), then C(V3VEE_TOOLS_DIR) in the host
        settings file C(/etc/v3vee/host.conf) (path from E(V3VEE_HOST_CONF)), then the absolute entries of E(PATH),
        C(/usr/local/bin), C(/usr/bin) and C(/opt/palacios/linux_usr) are used. Must be an absolute path; tools are
        never looked up in the current directory or a relative E(PATH) entry.
      - When the module runs as root, a tool that a user other than root could change - the file, its directory or
        any directory or symlink on the way from C(/), group- or world-writable or owned by another user - is refused
        before any tool runs.
    type: path
  proc_dir:
    description:
      - The Palacios proc directory.
      - Falls back to E(V3VEE_PROC_DIR), then C(V3VEE_PROC_DIR) in the host settings file, then C(/proc/v3vee).
      - A simulated host (role M(v3vee.palacios.simulator)) sets it in the host settings file.
    type: path
  dev_dir:
    description:
      - Directory holding the Palacios device nodes (C(v3vee), C(v3-vmN)).
      - Falls back to E(V3VEE_DEV_DIR), then the host settings file, then C(/dev).
    type: path
  inventory_path:
    description:
      - The host's VM inventory, an SQLite database. Created with mode C(0600) in a C(0700) directory; wider modes
        are tightened and said in a warning. A file that is damaged, another application's, of a newer schema, a
        symlink or owned by another user is refused before any tool runs and never changed. Before a schema upgrade
        the database is copied to C(<inventory_path>.bak-v<old version>-<UTC time>).
      - Guest configs given inline (C(config_xml)) are kept beside it, in C(configs/) of the same directory.
      - Falls back to E(V3VEE_INVENTORY_PATH), then the host settings file, then C(/var/lib/v3vee/inventory.db).
    type: path
  palacios_dir:
    description:
      - Value of E(PALACIOS_DIR) for the tools (V(v3_mem) keeps C(.v3offlinedmem) there).
      - Falls back to E(PALACIOS_DIR), then the host settings file.
    type: path
  lock_timeout:
    description:
      - Seconds to wait for the host lock (C(<inventory_path>.lock)). Every run that changes the host holds it
        for its whole duration, so concurrent playbooks cannot interleave v3 tool runs on one host.
      - The wait ends within a few milliseconds of O(lock_timeout); the module then fails, having run nothing, with a
        message that says another run holds the host lock, and returns the seconds it waited as C(lock_wait).
        V(0) takes the lock only if it is free at once.
    type: int
    default: 60
notes:
  - Every state change is verified by re-reading the proc directory, because the v3 tools' exit codes do not
    tell (for example V(v3_launch) always exits 0).
  - Tools are run with an argument list, never through a shell.
  - No tool run is unbounded. Each v3 tool runs in its own session (process group) with a deadline - the module's
    C(timeout) (for V(v3_create) plus one second per 16 MB it reads; the kernel-log readers of
    M(v3vee.palacios.v3vee_facts) 60 seconds). Past it the whole process group gets SIGTERM, then SIGKILL 2 seconds
    later, so a tool that ignores SIGTERM and the processes it started die too. The module then re-reads the proc
    directory, records what it shows in the inventory, releases the host lock and fails with a message naming the
    tool, its argv, how long it ran and the state found. C(changed) is true if anything took effect before. A tool
    stuck in the kernel (state D) dies only when its ioctl returns; the module waits 5 more seconds, then fails
    naming its pid, which may still act later.
'''

    ATTRIBUTES = r'''
attributes:
  action_group:
    description: Use C(group/v3vee.palacios.v3vee) in C(module_defaults) to set the common options once.
    support: full
    membership:
      - v3vee.palacios.v3vee
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
'''
