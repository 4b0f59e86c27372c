#!/usr/bin/env python
"""Open a status page (role status_page) in headless Chromium and report what the browser
rendered: the DOM's hosts, VM rows, states and kernel messages, elements that overflow their
panel (wide, narrow and print layout), the result of sorting a table, and every console error.
Tests assert on the report; this script asserts nothing.

    python tests/status_page/browse.py PAGE.html [--screenshot OUT.png] > report.json

Uses Debian's chromium (/usr/bin/chromium, installed by ./dev.sh setup) through the PyPI
package playwright; no browser is downloaded.
"""

import argparse
import json
import os
import sys

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get('V3VEE_CHROMIUM', '/usr/bin/chromium')
# Headless Chromium as root in a container, with no network and nothing phoning home.
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']

DOM = r'''() => {
  const txt = e => e ? e.textContent.replace(/\s+/g, ' ').trim() : null;
  const all = (root, sel) => Array.from(root.querySelectorAll(sel));
  return {
    title: document.title,
    h1: txt(document.querySelector('h1')),
    meta: txt(document.querySelector('.meta')),
    refresh: (document.querySelector('meta[http-equiv=refresh]') || {content: null}).content,
    summary: Object.fromEntries(all(document, '.summary .card').map(c => [c.id, txt(c)])),
    host_rows: all(document, '#hosts-table tbody tr').map(tr => all(tr, 'td').map(txt)),
    // anything the page would fetch: it must be self-contained
    fetches: all(document, '[src],link[href]').map(e => e.getAttribute('src') || e.getAttribute('href')),
    hosts: all(document, 'section.host').map(s => ({
      name: s.dataset.host,
      status: txt(s.querySelector('header > .st')),
      facts: txt(s.querySelector('header .facts')),
      problems: all(s, '.problems li').map(txt),
      memory: txt(s.querySelector('.memory')),
      slots: all(s, 'ol.slots li').map(li => ({cls: li.className, title: li.title, text: txt(li)})),
      vms: all(s, '.vms tbody tr').map(tr => Object.fromEntries(all(tr, 'td').map(td => [td.dataset.label, txt(td)]))),
      messages: all(s, 'ol.kmsg li').map(li => ({text: txt(li), vm_scoped: li.classList.contains('vm-msg'),
                                                 tag: txt(li.querySelector('.vmtag'))})),
      injected: all(s, 'img,iframe,object,embed').length,
    })),
  };
}'''

OVERFLOW = r'''() => {
  const out = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1)
    out.push({what: 'page scrolls sideways', scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth});
  document.querySelectorAll('.panel, #hosts-table').forEach(panel => {
    const box = panel.getBoundingClientRect();
    const name = panel.id || panel.className;
    if (panel.scrollWidth > panel.clientWidth + 1)
      out.push({what: 'panel scrolls sideways', panel: name, scrollWidth: panel.scrollWidth, clientWidth: panel.clientWidth});
    panel.querySelectorAll('*').forEach(el => {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) return;
      if (r.left < box.left - 1 || r.right > box.right + 1)
        out.push({what: 'outside its panel', panel: name, element: el.tagName + '.' + el.className,
                  text: (el.textContent || '').slice(0, 80), left: r.left, right: r.right,
                  panel_left: box.left, panel_right: box.right});
    });
  });
  return out;
}'''

SORT = r'''(tableId) => {
  const table = document.getElementById(tableId);
  const names = () => Array.from(table.tBodies[0].rows).map(r => r.cells[0].textContent.trim());
  const before = names();
  table.querySelector('th button[data-col="0"]').click();
  const ascending = names();
  table.querySelector('th button[data-col="0"]').click();
  const descending = names();
  return {before: before, ascending: ascending, descending: descending,
          aria: table.querySelector('th').getAttribute('aria-sort')};
}'''

VIEWS = (('wide', 1280, 900), ('narrow', 390, 844))


def report(page_path, screenshot=None):
    url = 'file://' + os.path.abspath(page_path)
    out = {'console_errors': [], 'overflow': {}}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for view, width, height in VIEWS:
                page = browser.new_page(viewport={'width': width, 'height': height})
                page.on('console', lambda msg, view=view: msg.type == 'error' and out['console_errors'].append(
                    '%s: %s' % (view, msg.text)))
                page.on('pageerror', lambda exc, view=view: out['console_errors'].append('%s: %s' % (view, exc)))
                page.goto(url, wait_until='load')
                out['overflow'][view] = page.evaluate(OVERFLOW)
                if view == 'wide':
                    out['dom'] = page.evaluate(DOM)
                    if screenshot:
                        page.screenshot(path=screenshot, full_page=True)
                    page.emulate_media(media='print')
                    out['overflow']['print'] = page.evaluate(OVERFLOW)
                    out['print_hides_stale_banner'] = page.evaluate(
                        "getComputedStyle(document.getElementById('stale')).display === 'none'")
                    page.emulate_media(media='screen')
                    first = page.evaluate("(document.querySelector('.vms table') || {}).id || null")
                    out['sort'] = page.evaluate(SORT, first) if first else None
                page.close()
        finally:
            browser.close()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('page')
    parser.add_argument('--screenshot')
    args = parser.parse_args()
    json.dump(report(args.page, args.screenshot), sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
