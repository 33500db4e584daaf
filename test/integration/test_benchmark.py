"""The benchmark suite (python -m tools.bench): target rules, the report, and short real runs of
its measuring parts (the pipeline with its probe, the transport pair, the stage benchmark).

The full suite takes minutes (`tools/benchmark.sh`); here each part runs for seconds, and the
figures are checked for consistency, not speed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from tools.bench.report import (evaluate_targets, INT8_CARD, markdown, plot, TARGET_CARD,
                                write_report)

STALL = 'inference_node run (+9.0 ms mean in that second)'


def _pipeline_row(hz: float, p50: float, p99: float, processed: float) -> dict:
    return {'task': 't', 'camera_hz': hz, 'seconds': 10.0, 'camera_frames': int(hz * 10),
            'camera_rate_hz': hz, 'processed': int(processed * 10),
            'processed_rate_hz': processed, 'smoothed': int(processed * 10),
            'dropped': 0, 'dropped_pct': 0.0,
            'latency_ms': {'p50': p50, 'p90': p50 * 1.2, 'p99': p99, 'max': p99, 'mean': p50},
            'raw_latency_ms': {'p50': p50 - 2, 'p90': 0, 'p99': 0, 'max': 0, 'mean': 0},
            'cpu_pct': {'camera_node': 10.0, 'inference_node': 150.0, 'smoothing_node': 5.0},
            'accounting': {'window_s': 20.0, 'camera_published': int(hz * 20),
                           'probe_results': int(processed * 20),
                           'inference_received': int(hz * 20),
                           'inference_processed': int(processed * 20),
                           'inference_skipped': int((hz - processed) * 20),
                           'inference_errors': 0, 'transport_lost': 0, 'checks': []},
            'stalls': {'count': 1, 'threshold_ms': 3 * p50,
                       'listed': [{'stamp': 1.0, 'latency_ms': 4 * p50,
                                   'stage': STALL}]}}


def synthetic_results() -> dict:
    stages = {'convert': 0.1, 'pre': 1.0, 'run': 30.0, 'decode': 1.0, 'message': 0.3,
              'publish': 0.3}
    return {
        'machine': {'cpu': 'test CPU', 'cpus': 2, 'date': 'today'},
        'transport': [
            {'size': '640x480', 'reliability': 'best_effort', 'profile': 'shipped', 'sent': 30,
             'received': 30, 'received_pct': 100.0, 'p50_ms': 2.5, 'p90_ms': 3.0,
             'max_ms': 4.0, 'mean_ms': 2.6},
            {'size': '640x480', 'reliability': 'best_effort', 'profile': 'defaults', 'sent': 30,
             'received': 10, 'received_pct': 33.3, 'p50_ms': 5.0, 'p90_ms': 6.0,
             'max_ms': 9.0, 'mean_ms': 5.2}],
        'inference': [{'card': TARGET_CARD, 'mean_ms': stages, 'other_ms': 2.7,
                       'other_over_run': 0.09, 'run_p50_ms': 30.0, 'frames': 10,
                       'intra_op_threads': 0, 'provider': 'CPUExecutionProvider'},
                      {'card': INT8_CARD, 'mean_ms': {**stages, 'run': 18.0},
                       'other_ms': 2.7, 'other_over_run': 0.15, 'run_p50_ms': 18.0,
                       'frames': 10, 'intra_op_threads': 0,
                       'provider': 'CPUExecutionProvider'}],
        'accuracy': [{'card': TARGET_CARD, 'recall': 1.0, 'precision': 0.955, 'tp': 21,
                      'fp': 1, 'fn': 0, 'ignored': 0},
                     {'card': INT8_CARD, 'recall': 0.952, 'precision': 0.952,
                      'tp': 20, 'fp': 1, 'fn': 1, 'ignored': 0}],
        'pipeline': {'tasks': {'human_detection': {
            'card': TARGET_CARD, 'video': 'vtest.avi',
            'model_alone': {'run_ms': {'mean': 30.0}, 'engine_ms': {'mean': 32.0},
                            'run_rate_hz': 33.3, 'engine_rate_hz': 31.25},
            'baseline': {'mean_ms': {'read': 1.0, 'infer': 32.0, 'draw': 0.5, 'total': 33.5},
                         'total_ms': {'p50': 33.4}, 'rate_hz': 29.9},
            # 10 Hz: slower than the model -> compared with the baseline (met: 38 <= 38.5);
            # 30 Hz: slower too, but the default detector's rate targets hold from 30 Hz: also
            # queueing (met: 60 <= 2 x 36) and rate against the camera's (missed: 26 < 27);
            # 60 Hz: faster -> queueing (missed: 100 > 2 x 45) and rate (met: 31 >= 30).
            'pipeline': [_pipeline_row(10, 38.0, 50.0, 10.0),
                         _pipeline_row(30, 36.0, 60.0, 26.0),
                         _pipeline_row(60, 45.0, 100.0, 31.0)]}}},
        'options': [{'name': 'one thread', 'card': TARGET_CARD, 'video': 'vtest.avi',
                     'model_alone': {'run_ms': {'mean': 30.0}, 'engine_ms': {'mean': 32.0},
                                     'run_rate_hz': 33.3, 'engine_rate_hz': 31.25},
                     'baseline': {'mean_ms': {'read': 1.0, 'infer': 32.0, 'draw': 0.5,
                                              'total': 33.5}},
                     'pipeline': [_pipeline_row(60, 45.0, 60.0, 30.5)]}],
    }


def test_targets_follow_the_issue_rules():
    targets = {(t.name, t.where): t for t in evaluate_targets(synthetic_results())}
    transport = targets[('transport p50', '640x480 bgr8, best_effort, shipped profile')]
    assert transport.met and transport.ratio == pytest.approx(2.5 / 3.0, abs=0.01)
    assert not any('defaults' in where for _, where in targets)
    stages = targets[('inference_node: everything but the session run', TARGET_CARD)]
    assert stages.met and stages.ratio == pytest.approx(0.3, abs=0.01)
    slow = targets[('end-to-end p50 vs baseline', 'human_detection, camera 10 Hz')]
    assert slow.met and slow.ratio == pytest.approx(38.0 / 38.5, abs=0.01)
    queue = targets[('no queueing: p99 / p50', 'human_detection, camera 60 Hz')]
    assert queue.met is False and queue.ratio == pytest.approx((100 / 45) / 2, abs=0.01)
    rate = targets[('processed rate vs model alone', 'human_detection, camera 60 Hz')]
    assert rate.met and rate.ratio == pytest.approx(0.9 / (31.0 / 33.3), abs=0.01)
    # int8: 30 / 18 = 1.67x faster (met) but one more miss = 4.8 points (> 2): missed.
    int8 = targets[('int8 default detector vs fp32', f'{INT8_CARD} vs {TARGET_CARD}')]
    assert int8.met is False and int8.ratio == pytest.approx(1.5 / (30 / 18), abs=0.01)
    at_30 = {name: t for (name, where), t in targets.items() if where.endswith('30 Hz')}
    assert at_30['end-to-end p50 vs baseline'].met
    assert at_30['no queueing: p99 / p50'].met
    assert at_30['processed rate vs model alone'].met is False
    assert '26.0 Hz of 30.0 Hz' in at_30['processed rate vs model alone'].measured
    assert 'the camera rate' in at_30['processed rate vs model alone'].limit
    # The 10 Hz camera is slower than the model: no queueing/rate target there, and the 60 Hz
    # camera is not compared with the baseline.
    assert ('no queueing: p99 / p50', 'human_detection, camera 10 Hz') not in targets
    assert ('end-to-end p50 vs baseline', 'human_detection, camera 60 Hz') not in targets


def test_rows_are_compared_with_the_reference_measured_around_them():
    results = synthetic_results()
    row = results['pipeline']['tasks']['human_detection']['pipeline'][0]  # 10 Hz, p50 38 ms
    # The machine was slower around this window: baseline 36 ms/frame -> limit 41 ms.
    row['reference'] = {'run_ms': 34.0, 'engine_ms': 36.0, 'baseline_ms': 36.0,
                        'run_rate_hz': 29.4, 'engine_rate_hz': 27.8}
    [target] = [t for t in evaluate_targets(results) if t.where.endswith('10 Hz')]
    assert target.met and target.limit.endswith('= 41.0 ms')
    assert target.ratio == pytest.approx(38.0 / 41.0, abs=0.01)


def test_missing_results_are_a_missed_target():
    results = synthetic_results()
    row = results['pipeline']['tasks']['human_detection']['pipeline'][0]
    row['latency_ms'] = {k: None for k in row['latency_ms']}
    missed = [t for t in evaluate_targets(results) if t.met is False]
    assert any(t.measured == 'no smoothed result' for t in missed)


def test_report_holds_every_figure_and_plot(tmp_path):
    report, targets = write_report(synthetic_results(), tmp_path)
    text = report.read_text()
    for figure in ('2.5', '33.3%', '30.00', '38.0', '100.0', '33.50', '150.0', '0.952',
                   '1.67x'):
        assert figure in text, figure
    assert text.count('| met |') == sum(t.met is True for t in targets)
    assert '| 60 Hz | 20.0 | 1200 | 1200 | 620 | 580 | 0 | 620 | yes |' in text  # accounting
    assert STALL in text  # a stall, attributed
    assert '| one thread | 60 Hz | 30.5 Hz | 92% of 33.3 Hz (model alone) | 45.0 | 60.0 | 1.33 |' in text
    assert '**missed**' in text
    for name in ('transport.png', 'inference_stages.png', 'end_to_end.png', 'cpu.png'):
        assert f'({name})' in text
        assert (tmp_path / name).stat().st_size > 10_000, name
    saved = json.loads((tmp_path / 'results.json').read_text())
    assert len(saved['targets']) == len(targets)


def test_render_command_rewrites_the_report(tmp_path):
    (tmp_path / 'results.json').write_text(json.dumps(synthetic_results()))
    done = subprocess.run([sys.executable, '-m', 'tools.bench', '--render',
                           str(tmp_path / 'results.json')], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'report.md').read_text().startswith('# ros_onnx_vision benchmark')
    assert markdown(synthetic_results(), [], plot({}, tmp_path)).count('##') >= 4


def test_pipeline_benchmark_measures_a_real_graph(ros_domain, tmp_path):
    """Digits at 20 Hz for a few seconds: the probe sees smoothed results, the camera's frames
    and the nodes' CPU; the baseline and model-alone figures are consistent."""
    from tools.bench import pipeline as bench_pipeline
    results = bench_pipeline.run(['digit_classification'], [20.0], seconds=4.0, warmup=2.5,
                                 frames=10, threads=1, workdir=tmp_path, log=print,
                                 domain=ros_domain)
    data = results['tasks']['digit_classification']
    alone, base = data['model_alone'], data['baseline']
    assert 0 < alone['run_ms']['mean'] <= alone['engine_ms']['mean']
    assert base['mean_ms']['total'] >= base['mean_ms']['infer'] > 0
    [row] = data['pipeline']
    ref = row['reference']  # measured before and after the window, camera stopped
    assert 0 < ref['before']['run_ms'] <= ref['before']['engine_ms']
    assert ref['baseline_ms'] == pytest.approx(
        (ref['before']['baseline_ms'] + ref['after']['baseline_ms']) / 2, abs=0.01)
    assert row['camera_rate_hz'] == pytest.approx(20.0, rel=0.25)
    assert row['processed'] > 0 and row['smoothed'] > 0
    assert row['processed'] <= row['camera_frames'] * 1.1 + 2
    lat = row['latency_ms']
    assert 0 < lat['p50'] <= lat['p90'] <= lat['p99'] < 1000
    assert 0 < row['raw_latency_ms']['p50'] <= lat['p50']
    assert set(row['cpu_pct']) == {'camera_node', 'inference_node', 'smoothing_node'}
    assert all(value > 0 for value in row['cpu_pct'].values())
    # The breakdown adds up: waiting + stages + hops = the mean end-to-end latency.
    parts = row['breakdown_ms']
    assert parts['run'] > 0 and parts['waiting'] > 0
    assert sum(v for k, v in parts.items() if k != 'total') == pytest.approx(
        lat['mean'], abs=0.2)


def test_transport_pair_measures_latency(ros_domain):
    from tools.bench import transport as bench_transport
    row = bench_transport.measure('640x480', 'reliable', True, 1.0, 20.0, ros_domain)
    assert row['sent'] == 20 and row['received'] >= 18
    assert 0 < row['p50_ms'] <= row['p90_ms'] <= row['max_ms'] < 1000


def test_accounting_reconciles_the_three_counts_and_names_a_disagreement():
    from types import SimpleNamespace
    from tools.bench.pipeline import accounting

    def status(received: int, processed: int, skipped: int) -> dict:
        return {'frames received': str(received), 'frames processed': str(processed),
                'frames skipped (newest-frame policy)': str(skipped), 'errors': '0'}

    # 10 s at 30 Hz: the camera published 300, inference_node took 300 and processed 200.
    probe = SimpleNamespace(
        frame_counts=[(100.0 + i / 30, i) for i in range(301)],
        inference_history=[(99.9, status(0, 0, 0)), (109.9, status(300, 200, 100))],
        raw=[(0.0, 100.0 + i / 20) for i in range(200)])
    good = accounting(probe, 100.0, 110.0)
    assert (good['camera_published'], good['inference_received'], good['inference_processed'],
            good['probe_results'], good['checks']) == (300, 300, 200, 200, [])
    probe.raw = probe.raw[:150]  # the probe lost a quarter of the results
    bad = accounting(probe, 100.0, 110.0)
    assert bad['checks'] == ['the probe saw 150 results, inference_node processed 200']


def test_committed_report_is_the_rendering_of_its_results(tmp_path):
    """docs/benchmark/report.md is what the renderer makes of docs/benchmark/results.json: an
    edit to either alone (or to the renderer's text) shows here."""
    shutil.copy(REPO / 'docs' / 'benchmark' / 'results.json', tmp_path / 'results.json')
    done = subprocess.run([sys.executable, '-m', 'tools.bench', '--render',
                           str(tmp_path / 'results.json')], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'report.md').read_text() == \
        (REPO / 'docs' / 'benchmark' / 'report.md').read_text()
