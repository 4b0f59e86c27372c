# -*- coding: utf-8 -*-
# Copyright: (c) 2026, v3vee.palacios maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of role v3vee.palacios.status_page: thin glue over plugin_utils.status_page."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.v3vee.palacios.plugins.plugin_utils.status_page import fleet_model, render_html


def status_page_model(hostvars, hosts, register, **options):
    """The status page's data from each host's registered v3vee_facts result."""
    results = {}
    for name in hosts:
        host = hostvars.get(name) if hasattr(hostvars, 'get') else hostvars[name]
        results[name] = host.get(register) if host is not None else None
    return fleet_model(results, list(hosts), **options)


class FilterModule(object):
    def filters(self):
        return {
            'status_page_model': status_page_model,
            'status_page_html': render_html,
        }
