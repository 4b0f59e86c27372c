"""Hypothesis settings for the property-based tests, and a summary of how many examples each ran.

Profile `ci` (the default): a fixed number of examples per test, derandomized (the same examples
on every run and machine) and no example database, so a CI failure reproduces anywhere with the
same command. HYPOTHESIS_PROFILE=deep runs 20 times as many random examples (a new seed each run,
printed with any failure) for a longer hunt by hand.
"""
import os
import re
from datetime import timedelta

from hypothesis import HealthCheck, settings

settings.register_profile('ci', max_examples=200, derandomize=True, database=None, print_blob=True,
                          deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])
settings.register_profile('deep', parent=settings.get_profile('ci'), max_examples=4000, derandomize=False)
PROFILE = os.environ.get('HYPOTHESIS_PROFILE', 'ci')
settings.load_profile(PROFILE)

# Hypothesis' pytest plugin leaves its per-test statistics on the test report (also across
# pytest-xdist workers); its lines "- N passing, M failing, and K invalid test cases" per phase.
_STATS_KEY = '_hypothesis_stats'
_CASES_RE = re.compile(r'- (\d+) passing, (\d+) failing, and (\d+) invalid test cases')


def pytest_terminal_summary(terminalreporter):
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            stats = report.__dict__.get(_STATS_KEY)
            if stats:
                counts = [tuple(int(n) for n in m) for m in _CASES_RE.findall(stats)]
                rows.append((report.nodeid, sum(c[0] + c[1] for c in counts), sum(c[2] for c in counts)))
    if not rows:
        return
    terminalreporter.section('Hypothesis examples (profile %s)' % PROFILE)
    for nodeid, run, invalid in sorted(rows):
        terminalreporter.write_line('%6d run %5d rejected  %s' % (run, invalid, nodeid))
    terminalreporter.write_line('%6d examples run in %d property tests'
                                % (sum(r[1] for r in rows), len(rows)))
