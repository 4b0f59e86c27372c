# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test helper for tests/integration/killpoints.py: every task result as one JSON line, written
as it arrives, so a playbook that is killed part-way still leaves the results it had."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = '''
name: kill_log
type: notification
short_description: task results as JSON lines (test helper)
description:
  - Appends one JSON line per task result (host, task name, status, result) to the file named by
    the environment variable E(V3VEE_KILL_LOG).
'''

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'kill_log'
    CALLBACK_NEEDS_ENABLED = True

    def _log(self, result, status):
        line = {'host': result._host.get_name(), 'task': result._task.get_name(), 'status': status,
                'result': result._result}
        with open(os.environ['V3VEE_KILL_LOG'], 'a') as handle:
            handle.write(json.dumps(line, default=str) + '\n')

    def v2_runner_on_ok(self, result):
        self._log(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._log(result, 'failed')

    def v2_runner_on_unreachable(self, result):
        self._log(result, 'unreachable')
