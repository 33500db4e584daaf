"""The benchmark suite's report: targets as ratios, a Markdown page and its plots. No ROS.

`tools/bench/__main__.py` measures and hands the results here as one JSON-ready dict:

- ``machine``: what it ran on;
- ``transport``: rows of `tools.bench.transport.measure` (size, reliability, profile, p50_ms...);
- ``inference``: rows of `tools.bench.inference.bench` (card, mean_ms per stage, other_over_run);
- ``accuracy``: person recall/precision of each detector card on the labelled images;
- ``pipeline``: `tools.bench.pipeline.run` (per task: model_alone, baseline, pipeline rows,
  each row with the `reference` figures measured around its window).

Targets are computed from those figures only, so a report can be re-rendered from its
JSON (`python -m tools.bench --render results.json`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TRANSPORT_LIMIT_MS = 3.0
NON_RUN_LIMIT = 0.30
BASELINE_MARGIN_MS = 5.0
QUEUE_RATIO_LIMIT = 2.0
RATE_FRACTION_LIMIT = 0.90
FAST_CAMERA_HZ = 30.0  # the default detector's rate targets hold from this camera rate up
TARGET_CARD = 'centernet_mobilenetv3_512.yaml'  # the default person detector
INT8_CARD = 'centernet_mobilenetv3_512_int8.yaml'
INT8_SPEEDUP_LIMIT = 1.5
RECALL_DROP_LIMIT = 2.0


@dataclass(frozen=True)
class Target:
    """One performance target evaluated on measured figures."""

    name: str
    where: str
    measured: str  # the figure(s), human readable
    ratio: float | None  # measured / limit where that is meaningful (<= 1 meets an upper bound)
    limit: str
    met: bool | None  # None: not measurable in this run (e.g. a task not run)


def _fmt(value: float | None, unit: str = '', digits: int = 1) -> str:
    return 'n/a' if value is None else f'{value:.{digits}f}{unit}'


def camera_faster(row: dict[str, Any], ref: dict[str, float]) -> bool:
    """The camera delivers frames faster than the engine alone (pre + run + decode) takes them:
    the queueing and rate targets apply; otherwise the row is compared with the baseline."""
    return row['camera_hz'] > ref['engine_rate_hz']


def reference_of(row: dict[str, Any], task: dict[str, Any]) -> dict[str, float]:
    """Model-alone and baseline figures to compare a pipeline row with: those measured just
    before and after its window when there are any, else the task's own measurement."""
    if 'reference' in row:
        return row['reference']
    alone, base = task['model_alone'], task['baseline']
    return {'run_ms': alone['run_ms']['mean'], 'engine_ms': alone['engine_ms']['mean'],
            'baseline_ms': base['mean_ms']['total'], 'run_rate_hz': alone['run_rate_hz'],
            'engine_rate_hz': alone['engine_rate_hz']}


def evaluate_targets(results: dict[str, Any]) -> list[Target]:
    """Every performance target on the figures in `results`."""
    targets: list[Target] = []
    for row in results.get('transport', []):
        if row['size'] == '640x480' and row['profile'] == 'shipped':
            p50 = row['p50_ms']
            targets.append(Target(
                'transport p50', f'640x480 bgr8, {row["reliability"]}, shipped profile',
                f'{_fmt(p50, " ms", 2)} ({row["received_pct"]}% received)',
                None if p50 is None else round(p50 / TRANSPORT_LIMIT_MS, 2),
                f'<= {TRANSPORT_LIMIT_MS:g} ms', None if p50 is None else p50 <= TRANSPORT_LIMIT_MS))
    for row in results.get('inference', []):
        if row['card'] == TARGET_CARD:
            ratio = row['other_over_run']
            targets.append(Target(
                'inference_node: everything but the session run', row['card'],
                f'{row["other_ms"]:.2f} ms vs run {row["mean_ms"]["run"]:.2f} ms',
                round(ratio / NON_RUN_LIMIT, 2), f'<= {NON_RUN_LIMIT:.0%} of the session run',
                ratio <= NON_RUN_LIMIT))
    for task, data in results.get('pipeline', {}).get('tasks', {}).items():
        for row in data['pipeline']:
            ref = reference_of(row, data)
            p50, p99 = row['latency_ms']['p50'], row['latency_ms']['p99']
            where = f'{task}, camera {row["camera_hz"]:g} Hz'
            if p50 is None:
                targets.append(Target('end-to-end latency', where, 'no smoothed result', None,
                                      'results', False))
                continue
            if not camera_faster(row, ref):
                limit_ms = ref['baseline_ms'] + BASELINE_MARGIN_MS
                targets.append(Target(
                    'end-to-end p50 vs baseline', where,
                    f'p50 {p50:.1f} ms; baseline {ref["baseline_ms"]:.1f} ms/frame',
                    round(p50 / limit_ms, 2), f'<= baseline + {BASELINE_MARGIN_MS:g} ms '
                    f'= {limit_ms:.1f} ms', p50 <= limit_ms))
            # The default detector keeps up with a 30 Hz camera and one faster than the model
            # alike; a camera slower than the model caps the rate it can reach.
            if camera_faster(row, ref) or (data['card'] == TARGET_CARD and
                                           row['camera_hz'] >= FAST_CAMERA_HZ):
                targets.extend(_rate_targets(row, ref, where, p50, p99))
    if (int8 := quantisation_comparison(results)) is not None:
        speedup, drop = int8['speedup'], int8['recall_drop_points']
        targets.append(Target(
            'int8 default detector vs fp32', f'{INT8_CARD} vs {TARGET_CARD}',
            f'{speedup:.2f}x faster session run; recall {int8["recall_int8"]:.3f} vs '
            f'{int8["recall_fp32"]:.3f}', round(INT8_SPEEDUP_LIMIT / speedup, 2),
            f'>= {INT8_SPEEDUP_LIMIT:g}x and recall within {RECALL_DROP_LIMIT:g} points',
            speedup >= INT8_SPEEDUP_LIMIT and drop <= RECALL_DROP_LIMIT))
    return targets


def possible_rate(row: dict[str, Any], ref: dict[str, float]) -> tuple[float, str]:
    """The rate a row could process at most: the model alone's or, when slower, the camera's
    (measured); and which of the two it is."""
    camera_hz = row.get('camera_rate_hz') or row['camera_hz']
    if ref['run_rate_hz'] <= camera_hz:
        return ref['run_rate_hz'], 'model alone'
    return camera_hz, 'camera'


def _rate_targets(row: dict[str, Any], ref: dict[str, float], where: str, p50: float,
                  p99: float) -> list[Target]:
    """No queueing, and the processed rate against what the model (or the camera) allows."""
    queue = p99 / p50
    possible, limited_by = possible_rate(row, ref)
    fraction = row['processed_rate_hz'] / possible
    which = 'the session-run rate' if limited_by == 'model alone' else 'the camera rate'
    return [
        Target('no queueing: p99 / p50', where, f'p99 {p99:.1f} / p50 {p50:.1f} ms',
               round(queue / QUEUE_RATIO_LIMIT, 2), f'<= {QUEUE_RATIO_LIMIT:g}',
               queue <= QUEUE_RATIO_LIMIT),
        Target('processed rate vs model alone', where,
               f'{row["processed_rate_hz"]:.1f} Hz of {possible:.1f} Hz ({fraction:.0%})',
               round(RATE_FRACTION_LIMIT / fraction, 2) if fraction else None,
               f'>= {RATE_FRACTION_LIMIT:.0%} of {which} (the lower of the two)',
               fraction >= RATE_FRACTION_LIMIT)]


def quantisation_comparison(results: dict[str, Any]) -> dict[str, float] | None:
    """Speed-up and recall change of the int8 default detector, both measured in this run."""
    runs = {r['card']: r['mean_ms']['run'] for r in results.get('inference', [])}
    recall = {r['card']: r['recall'] for r in results.get('accuracy', []) if 'recall' in r}
    if not {TARGET_CARD, INT8_CARD} <= runs.keys() & recall.keys():
        return None
    return {'speedup': round(runs[TARGET_CARD] / runs[INT8_CARD], 3),
            'recall_fp32': recall[TARGET_CARD], 'recall_int8': recall[INT8_CARD],
            'recall_drop_points': round(100 * (recall[TARGET_CARD] - recall[INT8_CARD]), 2)}


def miss_notes(results: dict[str, Any], targets: list[Target]) -> list[str]:
    """For each missed pipeline target, the figures of the same row that explain it."""
    notes: list[str] = []
    missed = {t.where for t in targets if t.met is False}
    cores = results.get('machine', {}).get('cpus') or 0
    for task, data in results.get('pipeline', {}).get('tasks', {}).items():
        for row in data['pipeline']:
            where = f'{task}, camera {row["camera_hz"]:g} Hz'
            if where not in missed:
                continue
            ref, parts, cpu = reference_of(row, data), row.get('breakdown_ms') or {}, row['cpu_pct']
            if not camera_faster(row, ref) and parts:
                after = sum(parts.get(k, 0.0) for k in ('message', 'publish', 'to_probe',
                                                        'smoothing'))
                notes.append(
                    f'{where}: the session run took {parts["run"]:.1f} ms in inference_node '
                    f'against {ref["run_ms"]:.1f} ms alone around the window; '
                    f'{parts["waiting"]:.1f} ms from the camera stamp to the worker taking the '
                    f'frame (the baseline reads a frame in '
                    f'{data["baseline"]["mean_ms"]["read"]:.1f} ms); {after:.1f} ms from the '
                    f'result to the smoothed result received (message, publish, two hops, '
                    f'smoothing).')
            elif camera_faster(row, ref):
                total = sum(cpu.values())
                notes.append(
                    f'{where}: the three nodes used {total:.0f}% CPU of '
                    f'{100 * cores:.0f}% ({", ".join(f"{k} {v:.0f}%" for k, v in cpu.items())}); '
                    f'the session run took {parts.get("run", float("nan")):.1f} ms in the node '
                    f'against {ref["run_ms"]:.1f} ms alone: the model shares the cores with '
                    f'the camera, DDS and smoothing.')
    return notes


def _verdict(target: Target) -> str:
    return {True: 'met', False: '**missed**', None: 'n/a'}[target.met]


def plot(results: dict[str, Any], out_dir: Path) -> list[str]:
    """Write the report's PNG plots into `out_dir`; returns their file names."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    written: list[str] = []

    transport = results.get('transport', [])
    if transport:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
        sizes = list(dict.fromkeys(r['size'] for r in transport))
        for ax, reliability in zip(axes, ('best_effort', 'reliable')):
            for k, profile in enumerate(('defaults', 'shipped')):
                rows = {r['size']: r for r in transport
                        if r['reliability'] == reliability and r['profile'] == profile}
                xs = [i + (k - 0.5) * 0.38 for i in range(len(sizes))]
                values = [rows[s]['p50_ms'] or 0 if s in rows else 0 for s in sizes]
                bars = ax.bar(xs, values, 0.36, label=f'{profile} profile')
                for bar, size in zip(bars, sizes):
                    if size in rows:
                        ax.annotate(f'{rows[size]["received_pct"]:.0f}%',
                                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                    ha='center', va='bottom', fontsize=7)
            ax.axhline(TRANSPORT_LIMIT_MS, color='red', lw=0.8, ls='--', label='3 ms goal')
            ax.set_xticks(range(len(sizes)), sizes)
            ax.set_title(f'{reliability.replace("_", " ")} (label: % received)', fontsize=9)
        axes[0].set_ylabel('p50 latency (ms)')
        axes[0].legend(fontsize=7)
        fig.suptitle('Image transport between two processes', fontsize=10)
        fig.tight_layout()
        fig.savefig(out_dir / 'transport.png', dpi=110)
        plt.close(fig)
        written.append('transport.png')

    inference = results.get('inference', [])
    if inference:
        stages = ('convert', 'pre', 'run', 'decode', 'message', 'publish')
        fig, ax = plt.subplots(figsize=(10, 0.6 + 0.6 * len(inference)))
        names = [r['card'].removesuffix('.yaml') for r in inference]
        left = [0.0] * len(inference)
        for stage in stages:
            values = [r['mean_ms'][stage] for r in inference]
            ax.barh(names, values, left=left, label=stage)
            left = [a + b for a, b in zip(left, values)]
        ax.set_xlabel('mean ms per frame')
        ax.legend(fontsize=7, ncol=6, loc='lower right')
        ax.set_title('inference_node per stage', fontsize=10)
        fig.tight_layout()
        fig.savefig(out_dir / 'inference_stages.png', dpi=110)
        plt.close(fig)
        written.append('inference_stages.png')

    tasks = results.get('pipeline', {}).get('tasks', {})
    if tasks:
        fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
        for ax, (task, data) in zip(axes[0], tasks.items()):
            rows = data['pipeline']
            labels = [f'{r["camera_hz"]:g} Hz' for r in rows]
            for k, q in enumerate(('p50', 'p90', 'p99')):
                xs = [i + (k - 1) * 0.26 for i in range(len(rows))]
                ax.bar(xs, [r['latency_ms'][q] or 0 for r in rows], 0.25, label=q)
            for i, r in enumerate(rows):  # the baseline measured around each window
                base = reference_of(r, data)['baseline_ms']
                ax.hlines(base, i - 0.42, i + 0.42, color='black', lw=1.0,
                          label='baseline per frame' if i == 0 else None)
                ax.hlines(base + BASELINE_MARGIN_MS, i - 0.42, i + 0.42, color='red', lw=1.0,
                          ls='--', label='baseline + 5 ms' if i == 0 else None)
            for i, r in enumerate(rows):
                ax.annotate(f'{r["processed_rate_hz"]:.1f} Hz', (i, 0), ha='center',
                            va='bottom', fontsize=7, color='white')
            ax.set_xticks(range(len(rows)), labels)
            ax.set_xlabel('camera rate (label: processed rate)')
            ax.set_ylabel('camera stamp -> smoothed result (ms)')
            ax.set_title(f'{task.replace("_", " ")} ({data["card"].removesuffix(".yaml")})',
                         fontsize=9)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / 'end_to_end.png', dpi=110)
        plt.close(fig)
        written.append('end_to_end.png')

        fig, ax = plt.subplots(figsize=(10, 3.4))
        configs = [(task, r) for task, data in tasks.items() for r in data['pipeline']]
        nodes = ('camera_node', 'inference_node', 'smoothing_node')
        bottom = [0.0] * len(configs)
        for node in nodes:
            values = [r['cpu_pct'].get(node, 0.0) for _, r in configs]
            ax.bar(range(len(configs)), values, bottom=bottom, label=node)
            bottom = [a + b for a, b in zip(bottom, values)]
        ax.set_xticks(range(len(configs)),
                      [f'{t.split("_")[0]}{" 1 thr" if "threads 1" in t else ""}\n'
                       f'{r["camera_hz"]:g} Hz' for t, r in configs],
                      fontsize=8)
        ax.axhline(100 * results.get('machine', {}).get('cpus', 2), color='grey', lw=0.8,
                   ls=':', label='all cores')
        ax.set_ylabel('CPU (% of one core)')
        ax.set_title('CPU per node', fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / 'cpu.png', dpi=110)
        plt.close(fig)
        written.append('cpu.png')
    return written


def markdown(results: dict[str, Any], targets: list[Target], plots: list[str]) -> str:
    """The report page."""
    m = results.get('machine', {})
    lines = ['# ros_onnx_vision benchmark report', '',
             f'Measured {m.get("date", "?")} on {m.get("cpu", "?")}, {m.get("cpus", "?")} cores, '
             f'{m.get("memory_gib", "?")} GiB, {m.get("os", "?")}; Python {m.get("python", "?")}, '
             f'ROS 2 {m.get("ros_distro", "?")} (rclpy from PyPI wheels), onnxruntime '
             f'{m.get("onnxruntime", "?")}, CPU only. Commit `{m.get("commit", "?")}`. '
             f'Command: `{m.get("command", "python -m tools.bench")}`. All figures come from this '
             'one run; the raw figures are in `results.json`.', '',
             '## Targets', '']
    if results.get('quick'):
        lines += ['**Quick run: windows of a few seconds, for checking the command. Its figures '
                  'are rough and not for the targets; the full suite\'s windows are 20 s.**', '']
    lines += ['| target | where | measured | limit | ratio to limit | verdict |',
              '|---|---|---|---|---|---|']
    for t in targets:
        lines.append(f'| {t.name} | {t.where} | {t.measured} | {t.limit} | '
                     f'{_fmt(t.ratio, "", 2)} | {_verdict(t)} |')
    lines += ['', 'Ratio to limit: measured / limit for upper bounds, limit / measured for the '
              'lower bound on rate and speed-up; at most 1.00 meets the target.', '']
    if notes := miss_notes(results, targets):
        lines += ['## What the figures say about the misses', ''] + \
            [f'- {n}' for n in notes] + ['']

    transport = results.get('transport', [])
    if transport:
        lines += ['## 1. Image transport between processes', '',
                  f'bgr8 frames at {results.get("transport_rate_hz", 30):g} Hz, '
                  f'{results.get("transport_seconds", "?")} s each; latency = receive time - '
                  'stamp set just before publishing, including the subscriber\'s conversion '
                  'to a numpy array (`python -m tools.bench.transport`).', '',
                  '| frame | reliability | profile | received | p50 ms | p90 ms | max ms |',
                  '|---|---|---|---|---|---|---|']
        for r in transport:
            lines.append(f'| {r["size"]} | {r["reliability"]} | {r["profile"]} | '
                         f'{r["received_pct"]}% of {r["sent"]} | {r["p50_ms"]} | {r["p90_ms"]} | '
                         f'{r["max_ms"]} |')
        lines += ['']
        if 'transport.png' in plots:
            lines += ['![transport](transport.png)', '']

    inference = results.get('inference', [])
    if inference:
        lines += ['## 2. inference_node per stage', '',
                  'The node\'s own per-frame functions in one process on real frames '
                  '(`python -m tools.bench.inference`), mean ms.', '',
                  '| card | convert | pre-processing | session run | decoding | message | '
                  'publish | all but run / run |', '|---|---|---|---|---|---|---|---|']
        for r in inference:
            s = r['mean_ms']
            lines.append(f'| {r["card"]} | {s["convert"]:.2f} | {s["pre"]:.2f} | {s["run"]:.2f} '
                         f'| {s["decode"]:.2f} | {s["message"]:.2f} | {s["publish"]:.2f} | '
                         f'{r["other_over_run"]:.0%} |')
        lines += ['']
        if 'inference_stages.png' in plots:
            lines += ['![stages](inference_stages.png)', '']

    tasks = results.get('pipeline', {}).get('tasks', {})
    if tasks:
        lines += ['## 3. End to end, and 4. the single-process baseline', '',
                  'camera_node plays the task\'s video at each rate; inference_node and '
                  'smoothing_node run as launched; latency = camera stamp to the smoothed '
                  'result received by a probe node (`python -m tools.bench.pipeline`). Dropped = '
                  'camera frames that inference_node skipped to stay on the newest frame. CPU in '
                  '% of one core. Baseline: one process where OpenCV reads the same video, the '
                  'same engine runs, and the result is drawn.', '']
        for task, data in tasks.items():
            alone, base = data['model_alone'], data['baseline']
            threads = data.get('intra_op_threads', 0)
            lines += [f'### {task.replace("_", " ")}: {data["card"]} on {data["video"]}', '',
                      f'- ONNX Runtime intra-op threads: {threads or "automatic (one per core)"}',
                      f'- model alone: session run {alone["run_ms"]["mean"]:.2f} ms mean '
                      f'({alone["run_rate_hz"]:.1f} Hz), engine per frame (pre + run + decode) '
                      f'{alone["engine_ms"]["mean"]:.2f} ms ({alone["engine_rate_hz"]:.1f} Hz)',
                      f'- baseline per frame, back to back: {base["mean_ms"]["total"]:.2f} ms (read '
                      f'{base["mean_ms"]["read"]:.2f}, infer {base["mean_ms"]["infer"]:.2f}, '
                      f'draw {base["mean_ms"]["draw"]:.2f}), p50 {base["total_ms"]["p50"]} ms, '
                      f'{base["rate_hz"]:.1f} Hz', '',
                      'Each row is compared with the model alone and the baseline measured just '
                      'before and after its window (the last two columns; the machine\'s speed '
                      'drifts). That baseline reads its frames paced at the row\'s camera rate, '
                      'like the original exercise reading a webcam, when the model keeps up '
                      'with that rate (a model that waits between frames runs each ~10% slower '
                      'than back to back, in both); else back to back.', '',
                      '| camera | published | processed | dropped | p50 ms | p90 ms | p99 ms | '
                      'inference result p50 ms | CPU camera / inference / smoothing | '
                      'session run alone ms | baseline ms/frame |',
                      '|---|---|---|---|---|---|---|---|---|---|---|']
            for r in data['pipeline']:
                lat, cpu, ref = r['latency_ms'], r['cpu_pct'], reference_of(r, data)
                lines.append(
                    f'| {r["camera_hz"]:g} Hz | {r["camera_rate_hz"]:.1f} Hz | '
                    f'{r["processed_rate_hz"]:.1f} Hz | {r["dropped_pct"]}% | {lat["p50"]} | '
                    f'{lat["p90"]} | {lat["p99"]} | {r["raw_latency_ms"]["p50"]} | '
                    f'{cpu.get("camera_node", "?")} / {cpu.get("inference_node", "?")} / '
                    f'{cpu.get("smoothing_node", "?")}% | {ref["run_ms"]:.2f} | '
                    f'{ref["baseline_ms"]:.2f} |')
            lines += accounting_lines(data['pipeline']) + stall_lines(data['pipeline'])
            rows = [r for r in data['pipeline'] if r.get('breakdown_ms')]
            if rows:
                keys = ('waiting', 'convert', 'pre', 'run', 'decode', 'message', 'publish',
                        'to_probe', 'smoothing', 'total')
                lines += ['', 'Where the mean end-to-end time goes (ms; inference_node\'s own '
                          'stage means from its diagnostics over the same window). waiting = '
                          'camera stamp to the worker taking the frame (publish, transport, '
                          'and the wait for the model when the camera is faster); to_probe = '
                          'result published to received; smoothing = raw result received to '
                          'smoothed result received.', '',
                          '| camera | ' + ' | '.join(keys) + ' |',
                          '|---|' + '---|' * len(keys)]
                for r in rows:
                    b = r['breakdown_ms']
                    lines.append(f'| {r["camera_hz"]:g} Hz | ' +
                                 ' | '.join(_fmt(b.get(k), '', 2) for k in keys) + ' |')
            lines += ['']
        for name, title in (('end_to_end.png', 'end to end'), ('cpu.png', 'CPU per node')):
            if name in plots:
                lines += [f'![{title}]({name})', '']

    if options := results.get('options'):
        lines += options_lines(options)

    if accuracy := results.get('accuracy'):
        lines += accuracy_lines(results, accuracy)
    return '\n'.join(lines) + '\n'


def accounting_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Each window's frames as the camera, inference_node and the probe counted them."""
    rows = [r for r in rows if 'accounting' in r]
    if not rows:
        return []
    lines = ['', 'Frame accounting over each window: published = camera_node\'s frame_count; '
             'received / processed / skipped = inference_node\'s own counters (diagnostics); '
             'results = raw results the probe received. They must agree to two frames and 5% '
             '(window edges), or the suite fails.', '',
             '| camera | window s | published | received | processed | skipped | lost in '
             'transport | results | agree |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        a = r['accounting']
        lines.append(f'| {r["camera_hz"]:g} Hz | {a["window_s"]} | {a["camera_published"]} | '
                     f'{a.get("inference_received", "?")} | {a.get("inference_processed", "?")} '
                     f'| {a.get("inference_skipped", "?")} | {a.get("transport_lost", "?")} | '
                     f'{a["probe_results"]} | '
                     f'{"yes" if not a["checks"] else "**no**: " + "; ".join(a["checks"])} |')
    return lines


def stall_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Every result later than 3x its window's p50, with the stage it happened in."""
    rows = [r for r in rows if 'stalls' in r]
    if not rows:
        return []
    lines = ['', 'Tails: p99 and max of each window, and every result later than 3x the '
             'window\'s p50 (a stall) with the stage it happened in (inference_node\'s stage '
             'means over the diagnostics second that holds it).', '',
             '| camera | p99 ms | max ms | stalls (> 3x p50) | the worst, and where |',
             '|---|---|---|---|---|']
    for r in rows:
        s, lat = r['stalls'], r['latency_ms']
        worst = '; '.join(f'{e["latency_ms"]} ms: {e["stage"]}' for e in s['listed'][:3])
        lines.append(f'| {r["camera_hz"]:g} Hz | {lat["p99"]} | {lat["max"]} | {s["count"]} | '
                     f'{worst or "none"} |')
    return lines


def options_lines(options: list[dict[str, Any]]) -> list[str]:
    """The human detection pipeline with each configuration, side by side, one run."""
    lines = ['## 5. Options on this machine, side by side', '',
             'The human detection pipeline at a camera faster (60 Hz) and about as fast as the '
             'model (30 Hz), one configuration after the other in the same run; processed '
             'rate against the lower of the camera rate and the same configuration\'s model '
             'alone (session run) measured around the window.',
             '', '| configuration | camera | processed | of the possible rate | p50 ms | '
             'p99 ms | p99/p50 | CPU camera / inference / smoothing |',
             '|---|---|---|---|---|---|---|---|']
    for option in options:
        for r in option['pipeline']:
            ref, lat, cpu = reference_of(r, option), r['latency_ms'], r['cpu_pct']
            possible, which = possible_rate(r, ref)
            share = r['processed_rate_hz'] / possible if possible else 0
            queue = lat['p99'] / lat['p50'] if lat['p50'] else float('nan')
            lines.append(f'| {option["name"]} | {r["camera_hz"]:g} Hz | '
                         f'{r["processed_rate_hz"]:.1f} Hz | {share:.0%} of '
                         f'{possible:.1f} Hz ({which}) | {lat["p50"]} | {lat["p99"]} | '
                         f'{queue:.2f} | {cpu.get("camera_node", "?")} / '
                         f'{cpu.get("inference_node", "?")} / {cpu.get("smoothing_node", "?")}% |')
    return lines + ['']


def accuracy_lines(results: dict[str, Any], accuracy: list[dict[str, Any]]) -> list[str]:
    """Every shipped card's accuracy on the real-world sets, with its session-run time."""
    runs = {r['card']: r['mean_ms']['run'] for r in results.get('inference', [])}
    lines = ['## Accuracy of every shipped card, and the int8 model', '',
             'Person recall / precision at IoU 0.5, at each card\'s thresholds, on near '
             'pedestrians (`../shared/data/pennfudan_dev`: 50 photos, 100 people at 2-10 m; a '
             'detection on a "difficult" person counts neither way) and on the project\'s '
             'labels (`test/data/person_labels.json`: 21 mostly distant people in vtest frames '
             'and photos). Digits: top-1 on the 1000 held-out MNIST digits and on the 29 phone '
             'photos of `../shared/data/digit_photos_dev`. The int8 card is made by '
             '`python -m tools.optimize` (see models/README.md). Precision-recall curves of '
             'every detector card on each labelled set (people in varied scenes too), with the '
             'shipped operating points: [people_accuracy.md](people_accuracy.md) '
             '(`python -m tools.evaluate.people_report`). Raw vs confirmed on labelled video '
             '(recall, precision, count changes, id switches per camera and processed rate): '
             '[voting.md](../voting.md#measured) (`python -m tools.evaluate.video score`).', '',
             '| card | near people R / P | far people R / P (TP FP FN) | digits held out | '
             'digit photos | session run ms (section 2) |', '|---|---|---|---|---|---|']
    for r in accuracy:
        run = _fmt(runs.get(r['card']), '', 2)
        if r.get('task', 'detection') == 'detection':
            near = r.get('near')
            near_text = f'{near["recall"]:.3f} / {near["precision"]:.3f}' if near else 'n/a'
            lines.append(f'| {r["card"]} | {near_text} | {r["recall"]:.3f} / '
                         f'{r["precision"]:.3f} ({r["tp"]} {r["fp"]} {r["fn"]}) | - | - | '
                         f'{run} |')
        else:
            photos = (f'{r["photos_top1"]:.1%} of {r["photos"]}' if 'photos_top1' in r
                      else 'n/a')
            held = _fmt(100 * r['heldout_top1'], '%') if r.get('heldout_top1') else 'n/a'
            lines.append(f'| {r["card"]} | - | - | {held} | {photos} | {run} |')
    if (int8 := quantisation_comparison(results)) is not None:
        lines += ['', f'int8 vs fp32 in this run: {int8["speedup"]:.2f}x faster session '
                  f'run, recall {int8["recall_int8"]:.3f} vs {int8["recall_fp32"]:.3f}.']
    return lines + ['']


def write_report(results: dict[str, Any], out_dir: Path) -> tuple[Path, list[Target]]:
    """results.json, report.md and the plots in `out_dir`; returns the report and targets."""
    import json
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = evaluate_targets(results)
    results = {**results, 'targets': [asdict(t) for t in targets]}
    (out_dir / 'results.json').write_text(json.dumps(results, indent=2))
    plots = plot(results, out_dir)
    report = out_dir / 'report.md'
    report.write_text(markdown(results, targets, plots))
    return report, targets
