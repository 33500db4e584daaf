"""Outputs of the demo: annotated frames, JSON lines, the one-page summary figure. No ROS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
import json
from pathlib import Path
from typing import Any

import numpy as np

from ros_onnx_vision.inference.annotation import draw_confirmed
from ros_onnx_vision.results import Detection, Result, Task


@dataclass
class FrameRecord:
    """What the pipeline said about one camera frame (times in seconds, camera clock)."""

    frame: int
    stamp: float
    # inference_node results; None: the frame was processed but its result never reached
    # the recorder (not "nothing found")
    raw: list[Result] | None = field(default_factory=list)
    confirmed: list[Result] = field(default_factory=list)  # smoothing_node output
    latency_ms: float | None = None  # camera stamp -> smoothed result received
    truth: int | None = None  # digits: the digit shown


def draw_frame(image: np.ndarray, record: FrameRecord | None, task: Task) -> np.ndarray:
    """The frame with the latest confirmed results (bold) over its raw results (thin)."""
    if record is None:
        return draw_confirmed(image, [], None, task, 'not processed yet')
    return draw_confirmed(image, record.raw or [], record.confirmed, task,
                          f'frame {record.frame}' + ('' if record.raw is not None
                                                     else ' (raw not received)'))


def result_dict(result: Result) -> dict[str, Any]:
    """results.jsonl form: detections as {id, label, score, box}, else {label, score}."""
    if isinstance(result, Detection):
        return {'id': result.track_id, 'label': result.label, 'score': round(result.score, 3),
                'box': [round(v, 1) for v in result.box]}
    return {'label': result.label, 'score': round(result.score, 3)}


def write_jsonl(path: Path, records: Sequence[FrameRecord]) -> None:
    with path.open('w') as out:
        for record in records:
            line = asdict(record)
            # raw stays a list for readers; raw_received tells "nothing found" from "never
            # arrived" (the demo warns about the latter).
            line['raw'] = [result_dict(r) for r in record.raw or []]
            line['raw_received'] = record.raw is not None
            line['confirmed'] = [result_dict(r) for r in record.confirmed]
            out.write(json.dumps(line) + '\n')


def _changes(values: Sequence[Any]) -> int:
    return sum(1 for a, b in zip(values, values[1:]) if a != b)


def summary(records: Sequence[FrameRecord], task: Task, camera_fps: float) -> dict[str, Any]:
    """Headline figures: latency, rate, flicker raw vs confirmed, confirmation delay."""
    done = [r for r in records if r.latency_ms is not None]
    latency = np.array([r.latency_ms for r in done]) if done else np.zeros(1)
    span = (done[-1].stamp - done[0].stamp) if len(done) > 1 else 0.0
    # Flicker on the frames with both results, so that the two counts compare.
    both = [r for r in done if r.raw is not None]
    if task is Task.DETECTION:
        raw_series = [len(r.raw) for r in both]
        confirmed_series = [len(r.confirmed) for r in both]
    else:
        raw_series = [r.raw[0].label if r.raw else None for r in both]
        confirmed_series = [r.confirmed[0].label if r.confirmed else None for r in both]
    out = {
        'frames': len(records), 'results': len(done),
        'processed_rate_hz': round((len(done) - 1) / span, 2) if span > 0 else 0.0,
        'camera_fps': camera_fps,
        'latency_ms_p50': round(float(np.percentile(latency, 50)), 1),
        'latency_ms_p90': round(float(np.percentile(latency, 90)), 1),
        'latency_ms_p99': round(float(np.percentile(latency, 99)), 1),
        'raw_changes': _changes(raw_series), 'confirmed_changes': _changes(confirmed_series),
        'raw_missing': len(done) - len(both),
    }
    if task is Task.CLASSIFICATION:
        out.update(_digit_scores(done))
    return out


def _digit_scores(done: Sequence[FrameRecord]) -> dict[str, Any]:
    """Accuracy of confirmed labels and delay from a digit's appearance to its confirmation."""
    delays, shown, correct_frames, wrong_frames, held_frames = [], 0, 0, 0, 0
    start: FrameRecord | None = None
    confirmed_this = False
    for prev, rec in zip([None, *done], done):
        label = rec.confirmed[0].label if rec.confirmed else None
        if rec.truth is not None and (prev is None or prev.truth != rec.truth):
            start, confirmed_this, shown = rec, False, shown + 1
        if label is not None:
            if rec.truth is not None and label == str(rec.truth):
                correct_frames += 1
                if not confirmed_this and start is not None:
                    delays.append(rec.stamp - start.stamp)
                    confirmed_this = True
            elif rec.truth is not None:
                wrong_frames += 1
            else:
                held_frames += 1  # still confirmed on blank paper: the release hysteresis
    return {'digits_shown': shown, 'digits_confirmed': len(delays),
            'confirmation_delay_s_mean': round(float(np.mean(delays)), 3) if delays else None,
            'confirmed_right_frames': correct_frames, 'confirmed_wrong_frames': wrong_frames,
            'confirmed_on_blank_frames': held_frames}


def summary_figure(path: Path, records: Sequence[FrameRecord], task: Task,
                   figures: dict[str, Any], title: str) -> None:
    """One page: raw vs confirmed over time, end-to-end latency, processing rate."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    done = [r for r in records if r.latency_ms is not None]
    if not done:
        raise ValueError('no results to plot')
    t0 = done[0].stamp
    t = np.array([r.stamp - t0 for r in done])
    fig, axes = plt.subplots(3, 1, figsize=(11, 10), sharex=True,
                             gridspec_kw={'height_ratios': [2, 1, 1]})
    ax = axes[0]
    if task is Task.DETECTION:
        ax.plot(t, [np.nan if r.raw is None else len(r.raw) for r in done], color='0.6', lw=1,
                label='raw (inference_node)')
        ax.step(t, [len(r.confirmed) for r in done], where='post', color='tab:green', lw=2,
                label='confirmed (smoothing_node)')
        ax.set_ylabel('persons in frame')
    else:
        truth = [r.truth if r.truth is not None else np.nan for r in done]
        ax.plot(t, truth, color='tab:blue', lw=8, alpha=0.2, label='digit shown')
        raw = [float(r.raw[0].label) if r.raw else np.nan for r in done]
        ax.plot(t, raw, '.', color='0.5', ms=4, label='raw top label')
        confirmed = [float(r.confirmed[0].label) if r.confirmed else np.nan for r in done]
        ax.step(t, confirmed, where='post', color='tab:green', lw=2, label='confirmed label')
        ax.set_yticks(range(10))
        ax.set_ylabel('digit')
    ax.legend(loc='upper right', fontsize=8)
    ax.set_title(
        f'{title}\nflicker: {figures["raw_changes"]} changes raw -> '
        f'{figures["confirmed_changes"]} confirmed' + (
            f'; confirmation delay {figures["confirmation_delay_s_mean"]} s'
            if figures.get('confirmation_delay_s_mean') is not None else ''), fontsize=10)
    axes[1].plot(t, [r.latency_ms for r in done], color='tab:orange', lw=1)
    axes[1].axhline(figures['latency_ms_p50'], color='k', ls='--', lw=0.8,
                    label=f'p50 {figures["latency_ms_p50"]} ms, p99 '
                          f'{figures["latency_ms_p99"]} ms')
    axes[1].set_ylabel('end-to-end\nlatency (ms)')
    axes[1].legend(loc='upper right', fontsize=8)
    # Results per second in 1 s bins, against the camera rate.
    bins = np.arange(0, max(t[-1], 1.0) + 1.0, 1.0)
    counts, _ = np.histogram(t, bins)
    axes[2].step(bins[:-1], counts, where='post', color='tab:purple',
                 label=f'processed ({figures["processed_rate_hz"]} Hz mean)')
    axes[2].axhline(figures['camera_fps'], color='k', ls=':', lw=0.8,
                    label=f'camera {figures["camera_fps"]:g} Hz')
    axes[2].set_ylabel('results / s')
    axes[2].set_xlabel('camera time (s)')
    axes[2].legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
