"""What the optimiser writes: its report (table, JSON, goal check) and the derived cards.

A derived model card is the source card with its model file, SHA-256 and provenance changed,
so every variant loads, validates and documents itself like a hand-written card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from tools.optimize.evaluation import CLOSE_UP_FLOOR, VariantResult
from ros_onnx_vision.inference.model_card import file_sha256, load_model_card, ModelCard
from ros_onnx_vision.results import Task

# The goal for the int8 variant: this much faster, at most this much recall/accuracy lost.
GOAL_SPEEDUP = 1.5
GOAL_RECALL_DROP = 0.02


@dataclass
class OptimizationReport:
    """What :func:`optimize` made and measured."""

    card: ModelCard
    variants: list[VariantResult]
    calibration: str
    threads: int
    goal: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        base = self.variants[0]
        rows = [v.summary(base) for v in self.variants]
        for row in rows:
            row.pop('predictions', None)
        return {'card': str(self.card.path), 'threads': self.threads,
                'calibration': self.calibration, 'variants': rows, 'goal': self.goal}

    def table(self) -> str:
        """The printed table."""
        base = self.variants[0]
        lines = [f'{"variant":<16} {"MB":>6} {"mean ms":>8} {"p50 ms":>7} {"speed-up":>8} '
                 + ('recall  precision' if self.card.task is Task.DETECTION else 'accuracy')]
        for v in self.variants:
            speed = base.mean_ms / v.mean_ms if v.times_ms and base.times_ms else math.nan
            if self.card.task is Task.DETECTION:
                acc = f'{v.accuracy["recall"]:.3f}   {v.accuracy["precision"]:.3f}' + (
                    f'   ({v.accuracy["tp"]} TP, {v.accuracy["fp"]} FP, {v.accuracy["fn"]} FN)')
            else:
                acc = (f'{v.accuracy["accuracy"]:.3f}' if 'accuracy' in v.accuracy
                       else v.accuracy.get('metric', ''))
            timing = (f'{v.mean_ms:>8.1f} {v.p50_ms:>7.1f} {speed:>7.2f}x' if v.times_ms
                      else f'{"-":>8} {"-":>7} {"-":>8}')
            lines.append(f'{v.name:<16} {v.size / 1e6:>6.2f} {timing} {acc}')
        for v in self.variants[1:]:
            lines.append(f'  {v.name}: {v.description}')
        near = [v for v in self.variants if 'near_pedestrians' in v.accuracy]
        if near:
            lines.append('near pedestrians (../shared/data/pennfudan_dev): ' + ', '.join(
                f'{v.name} recall {v.accuracy["near_pedestrians"]["recall"]:.3f} precision '
                f'{v.accuracy["near_pedestrians"]["precision"]:.3f}' for v in near))
        lines += self._agreement_lines()
        return '\n'.join(lines)

    def _agreement_lines(self) -> list[str]:
        base = self.variants[0]
        lines = []
        for v in self.variants[1:]:
            a = v.accuracy.get('agreement')
            if a is None:
                continue
            if not a['frames']:
                lines.append(f'agreement with fp32: {a["note"]}')
                continue
            if not lines:
                lines.append(f'agreement with fp32 (IoU >= 0.5, card thresholds) on '
                             f'{a["metric"].split(": ", 1)[1]}:')
            lines.append(f'  {v.name:<14} fp32 boxes {a["fp32_boxes"]}, boxes {a["boxes"]}, '
                         f'matched {a["matched"]}: recall {a["recall"]:.3f}, precision '
                         f'{a["precision"]:.3f}, mean IoU {a["mean_iou"]:.3f}')
        if 'close_ups' in base.accuracy:
            lines.append(f'close-ups, score of the labelled person (threshold '
                         f'{self.card.score_threshold:g}; 0 = not found above {CLOSE_UP_FLOOR:g}):')
            for name in base.accuracy['close_ups']:
                lines.append(f'  {name:<14} ' + '  '.join(
                    f'{v.name} ' + ', '.join(f'{x:.3f}' for x in v.accuracy['close_ups'][name])
                    for v in self.variants if name in v.accuracy.get('close_ups', {})))
        return lines


def check_goal(base: VariantResult, candidate: VariantResult, task: Task) -> dict[str, Any]:
    speedup = base.mean_ms / candidate.mean_ms
    if task is Task.DETECTION:
        drop = base.accuracy['recall'] - candidate.accuracy['recall']
        metric = 'recall'
    elif 'accuracy' in candidate.accuracy and 'accuracy' in base.accuracy:
        drop = base.accuracy['accuracy'] - candidate.accuracy['accuracy']
        metric = 'accuracy'
    else:
        drop, metric = math.nan, 'not evaluated'
    met = speedup >= GOAL_SPEEDUP and drop <= GOAL_RECALL_DROP + 1e-9
    return {'variant': candidate.name, 'speedup': round(speedup, 3),
            f'{metric}_drop': None if math.isnan(drop) else round(drop, 4),
            'target': f'>= {GOAL_SPEEDUP}x faster, {metric} within '
                      f'{GOAL_RECALL_DROP * 100:g} points', 'met': bool(met)}


class _CardDumper(yaml.SafeDumper):
    """Short lists of numbers/strings in flow style ([1, 2, 3]), like the hand-written cards."""


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> Any:
    flow = len(value) <= 200 and all(isinstance(v, (int, float, str, type(None)))
                                    for v in value)
    return dumper.represent_sequence('tag:yaml.org,2002:seq', value, flow_style=flow)


_CardDumper.add_representer(list, _represent_list)
_CardDumper.add_representer(tuple, _represent_list)


def write_card(source: ModelCard, model_path: Path, card_path: Path, name: str,
               derivation: Mapping[str, Any]) -> ModelCard:
    """Write a card for a derived model: the source card with ``name``, ``file``, ``sha256``
    (and a ``labels`` path valid from the new folder) changed and ``provenance`` extended with
    ``derivation``; returns it loaded (and so validated)."""
    data = yaml.safe_load(source.path.read_text(encoding='utf-8'))
    data['name'] = name
    data['file'] = os.path.relpath(model_path, card_path.parent)
    data['sha256'] = file_sha256(model_path)
    if source.labels_path is not None:
        labels = os.path.relpath(source.labels_path, card_path.parent)
        # Relative within one tree (models/, output/optimized/), absolute elsewhere (/tmp).
        data['labels'] = labels if labels.count('..') <= 2 else str(source.labels_path)
    provenance = dict(source.provenance)
    provenance.update(derivation)
    data['provenance'] = provenance
    # The derived model gets its own reference (the optimiser records it); when its
    # self-check fails on a machine, the source card is used instead.
    data.pop('reference', None)
    data['fallback'] = os.path.relpath(source.path, card_path.parent)
    header = (f'# Model card for {name}: derived from {source.path.name} by '
              '"python -m tools.optimize" (see provenance).\n')
    card_path.write_text(header + yaml.dump(data, Dumper=_CardDumper, sort_keys=False,
                                            width=100), encoding='utf-8')
    return load_model_card(card_path)

def update_measured(card_path: Path, figures: Mapping[str, Any],
                    baseline: Mapping[str, Any]) -> ModelCard:
    """Merge ``figures`` into a derived card's ``provenance.optimization.measured`` (and
    ``baseline`` into its ``baseline_fp32``), keeping its header comment and the rest."""
    text = card_path.read_text(encoding='utf-8')
    header = ''.join(f'{line}\n' for line in text.splitlines() if line.startswith('#'))
    data = yaml.safe_load(text)
    measured = data.setdefault('provenance', {}).setdefault('optimization', {}).setdefault(
        'measured', {})
    measured.update(figures)
    measured.setdefault('baseline_fp32', {}).update(baseline)
    card_path.write_text(header + yaml.dump(data, Dumper=_CardDumper, sort_keys=False,
                                            width=100), encoding='utf-8')
    return load_model_card(card_path)
