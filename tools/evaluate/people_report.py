"""Precision-recall of every shipped person detector on each labelled set, with the operating
point each card ships, as a page of the benchmark report.

    python -m tools.evaluate.people_report [--output docs/benchmark]

Writes OUTPUT/people_accuracy.md (the table) and OUTPUT/pr_<set>.png (one curve per card, the
card's own threshold marked). The sets: the project's labels (test/data: surveillance-scale
pedestrians, two person-free photos), and where present beside the checkout
../shared/data/pennfudan_dev (near pedestrians) and ../shared/data/people_varied_dev (rooms,
sports, crowds, night; person-free images). Scoring as tools.evaluate.people: IoU 0.5, difficult
labels neither hit nor miss, misses only on crowd images.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
import subprocess
from typing import Any

import numpy as np

from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import load_model_card
from ros_onnx_vision.results import Task
from tools.evaluate.people import (DATA, evaluate_engine, Evaluation, load_box_labels,
                                   load_labels, PEOPLE_VARIED, PENNFUDAN, REPO)
from tools.machine import cpu_summary

COLLECT_AT = 0.1  # detections are collected down to this score, then re-thresholded
THRESHOLDS = np.round(np.arange(COLLECT_AT, 0.901, 0.025), 3)
PRECISION_FLOOR = 0.85  # "best recall at precision >= 0.85", the issue-21 operating figure


@dataclass(frozen=True)
class LabelledSet:
    key: str
    title: str
    folder: Path
    labels: dict[str, Any]


def labelled_sets() -> list[LabelledSet]:
    """The project's labels, and each development set that is beside the checkout."""
    sets = [LabelledSet('project', 'project labels (test/data: far pedestrians, 2 person-free)',
                        DATA, load_labels())]
    for key, title, folder in (
            ('pennfudan', 'Penn-Fudan dev (near pedestrians)', PENNFUDAN),
            ('varied', 'people_varied_dev (COCO val: rooms, sports, crowds, night)',
             PEOPLE_VARIED)):
        if (folder / 'labels.json').is_file():
            sets.append(LabelledSet(key, title, folder, load_box_labels(folder / 'labels.json')))
        else:
            print(f'[people_report] {folder} not found: that set is left out', flush=True)
    return sets


def detection_cards() -> list[Path]:
    """Every shipped card that detects people."""
    return [path for path in sorted((REPO / 'models').glob('*.yaml'))
            if load_model_card(path).task is Task.DETECTION]


def best_recall(curve: list[dict[str, float]]) -> dict[str, float] | None:
    """The threshold with the most recall at precision >= PRECISION_FLOOR (None: never)."""
    ok = [row for row in curve if row['precision'] >= PRECISION_FLOOR]
    return max(ok, key=lambda row: (row['recall'], row['threshold'])) if ok else None


def measure(cards: list[Path], sets: list[LabelledSet]) -> list[dict[str, Any]]:
    """Per card and set: the figures at the card's threshold, the curve, the time per image."""
    rows = []
    for path in cards:
        engine = InferenceEngine.from_card_file(path, intra_op_threads=1)
        for labelled in sets:
            engine.timings.reset()
            collected: Evaluation = evaluate_engine(engine, labelled.labels, labelled.folder,
                                                    score_threshold=COLLECT_AT)
            mean = engine.timings.mean
            own = collected.at(engine.card.score_threshold)
            curve = collected.pr_curve(THRESHOLDS)
            rows.append({'card': path.name, 'set': labelled.key,
                         'threshold': engine.card.score_threshold, **own.to_dict(),
                         'best': best_recall(curve), 'curve': curve,
                         'ms_per_image': round(mean.pre_ms + mean.run_ms + mean.post_ms, 1)})
            print(f'[people_report] {path.name} on {labelled.key}: recall {own.recall:.3f}, '
                  f'precision {own.precision:.3f} at {engine.card.score_threshold}', flush=True)
    return rows


def plot(rows: list[dict[str, Any]], labelled: LabelledSet, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for row in rows:
        curve = row['curve']
        line, = ax.plot([c['recall'] for c in curve], [c['precision'] for c in curve], lw=1.5,
                        label=f'{row["card"]} (shipped {row["threshold"]})')
        ax.plot([row['recall']], [row['precision']], 'o', ms=9, color=line.get_color(),
                markeredgecolor='black')
    ax.axhline(PRECISION_FLOOR, color='0.6', ls=':', lw=1)
    ax.set_xlabel('recall (IoU 0.5)')
    ax.set_ylabel('precision')
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(f'{labelled.title}\nscore {COLLECT_AT}-0.9; dot = the card\'s own threshold',
                 fontsize=10)
    ax.legend(fontsize=8, loc='lower left')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(rows: list[dict[str, Any]], sets: list[LabelledSet]) -> str:
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO,
                            capture_output=True, text=True).stdout.strip() or 'unknown'
    lines = ['# Person detectors on the labelled sets', '',
             f'Generated by `python -m tools.evaluate.people_report` (main {commit}, '
             f'{cpu_summary()}, 1 thread). IoU 0.5, one detection per person; "difficult" labels '
             'are neither hit nor miss; crowd images count misses only; a person-free image is '
             'one with no label at all. "best R at P>=0.85" is the most recall any threshold '
             'gives at precision 0.85 or more. Time: pre-processing + session run + decoding '
             'per image of that set.', '',
             '| set | card | threshold | recall | precision | false persons on person-free '
             'images | best R at P>=0.85 (threshold) | ms per image |',
             '|---|---|---|---|---|---|---|---|']
    for labelled in sets:
        for row in (r for r in rows if r['set'] == labelled.key):
            best = row['best']
            best_text = f'{best["recall"]:.3f} ({best["threshold"]})' if best else 'never'
            lines.append(f'| {labelled.key} | {row["card"]} | {row["threshold"]} | '
                         f'{row["recall"]:.3f} | {row["precision"]:.3f} | '
                         f'{row["person_free_hits"]} | {best_text} | {row["ms_per_image"]} |')
    lines.append('')
    for labelled in sets:
        lines += [f'## {labelled.title}', '', f'![precision-recall](pr_{labelled.key}.png)', '']
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--output', type=Path, default=REPO / 'docs' / 'benchmark')
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    sets = labelled_sets()
    rows = measure(detection_cards(), sets)
    for labelled in sets:
        plot([r for r in rows if r['set'] == labelled.key], labelled,
             args.output / f'pr_{labelled.key}.png')
    (args.output / 'people_accuracy.md').write_text(markdown(rows, sets) + '\n')
    print(f'[people_report] wrote {args.output}/people_accuracy.md and pr_*.png')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
