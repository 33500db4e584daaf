"""A short soak (python -m tools.soak for ~45 s): the pipeline runs without failure and no node's
resident memory grows by 10% or more after a short warm-up. The long run is
`python -m tools.soak --minutes 20` (goal: growth < 5%, no upward latency trend).
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_short_soak(ros_domain, tmp_path):
    command = [sys.executable, '-m', 'tools.soak', '--minutes', '0.75',
               '--warmup', '15', '--interval', '2', '--stall', '15', '--output', str(tmp_path),
               '--domain', str(ros_domain)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=150)
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / 'soak_summary.json').read_text())
    assert not summary['failures']
    assert summary['results_after_warmup'] > 0
    for name, node in summary['nodes'].items():
        assert node['growth_pct'] is not None and node['growth_pct'] < 10.0, (name, node)
    assert summary['latency']['p50_ms'] is not None
    rows = (tmp_path / 'soak.csv').read_text().splitlines()
    assert len(rows) >= 15 and rows[0].startswith('t_s,camera_node_rss_kb')
