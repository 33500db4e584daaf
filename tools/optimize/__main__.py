"""``python -m tools.optimize``: faster variants of a model card, measured and carded.

    python -m tools.optimize --card models/nanodet_m_416.yaml [--output-dir output/optimized] ...

Writes onnxruntime's portable offline-optimised graph and static int8 variants of a card's
model, times each against the original in one interleaved run, measures its accuracy (and,
for a detector, its agreement with fp32 on frames calibration did not use), and writes a model
card per variant whose provenance holds how it was made and what was measured, so a variant
is shipped like any other card. ``--evaluate-only`` re-measures an existing variant card.
The stages live in tools.optimize.frames, .quantization, .evaluation and .report. Needs the
source checkout (test/data, the demo's inputs; writes output/).
What was tried and measured: docs/optimization.md.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
import json
import os
from pathlib import Path
import shlex
import sys
from typing import Any, Callable, Sequence

from tools.machine import cpu_summary
from tools.optimize.evaluation import (benchmark, evaluate_accuracy, heldout_digits,
                                       measure_detection_agreement, timing_tensors, VariantResult)
from tools.optimize.frames import (add_zoomed_crops, agreement_frames, calibration_frames,
                                   card_tensors, DEFAULT_AGREEMENT_FRAMES, DEFAULT_FRAMES,
                                   HeldOutFrames, OptimizationError)
from tools.optimize.quantization import (check_quantizable, DEFAULT_VARIANT, PAIR_LIMIT,
                                         quantize_model, saturation_risks, SaturationRisk,
                                         save_offline_optimized, VARIANTS)
from tools.optimize.report import check_goal, OptimizationReport, update_measured, write_card
from ros_onnx_vision.camera.frame_sources import VIDEO_EXTENSIONS
from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import file_sha256, load_model_card, ModelCard
from ros_onnx_vision.inference.self_check import (reference_block, REFERENCE_IMAGES,
                                                  score_floor, write_reference)
from ros_onnx_vision.resources import model_file
from ros_onnx_vision.results import Task

DEFAULT_OUTPUT_DIR = Path('output/optimized')
DEFAULT_RUNS = 50


def optimize(card_path: str | Path, output_dir: str | Path = DEFAULT_OUTPUT_DIR, *,
             calibration: str | None = None, frames: int = DEFAULT_FRAMES,
             threads: int = 2, runs: int = DEFAULT_RUNS,
             variants: Sequence[str] = (DEFAULT_VARIANT,), offline: bool = True,
             zoom: float = 0.5, agreement_count: int = DEFAULT_AGREEMENT_FRAMES,
             command: str = '', log: Callable[[str], None] = print) -> OptimizationReport:
    """Make, measure and card the optimised variants of a model card.

    ``zoom``: detection cards add zoomed crops, this fraction of the calibration frames
    (:func:`add_zoomed_crops`; 0 for none); ``agreement_count``: frames of the calibration
    video calibration did not use on which each variant is compared with fp32
    (:func:`agreement_frames`, detection cards). ``variants``: names from :data:`VARIANTS`; the
    first is written as ``<name>_int8``, any others as ``<name>_int8_<variant>``. Raises
    :class:`OptimizationError` (or ModelCardError) with what was wrong.
    """
    import onnxruntime as ort
    card = load_model_card(card_path)
    check_quantizable(card)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise OptimizationError(f'unknown variant(s) {unknown}; expected names from '
                                f'{", ".join(VARIANTS)}')
    if threads < 1:
        raise OptimizationError(f'--threads {threads}: expected >= 1 (the same for every model)')
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() == card.path.parent and card.name.endswith(('_int8', '_ortopt')):
        raise OptimizationError(f'{card.path} is already a derived card; optimise its source')
    calib = calibration_frames(calibration, frames, log)
    if card.task is Task.DETECTION and zoom > 0:
        calib = add_zoomed_crops(calib, zoom)
    tensors = card_tensors(card, calib.frames)
    log(f'calibration: {calib.source} -> {len(tensors)} tensors')

    digits = heldout_digits() if card.task is Task.CLASSIFICATION else None
    timing = timing_tensors(card, digits) or tensors[:8]

    base = VariantResult('fp32', card.model_path, 'shipped model, ORT online optimisation')
    results = [base]
    common = {'derived_from': {'card': card.path.name, 'file': card.model_path.name,
                               'sha256': file_sha256(card.model_path)},
              'onnxruntime': ort.__version__,
              'command': command or 'tools.optimize optimize()'}
    if offline:
        path = out / f'{card.name}_ortopt.onnx'
        save_offline_optimized(card.model_path, path)
        results.append(VariantResult('ortopt', path, 'onnxruntime basic-level (portable) '
                                     'optimised graph, fp32'))
    for i, key in enumerate(variants):
        settings = VARIANTS[key]
        suffix = '_int8' if i == 0 else f'_int8_{key}'
        path = out / f'{card.name}{suffix}.onnx'
        log(f'quantising {key}: {settings.short()}')
        fixes = quantize_model(card.model_path, path, card.input.name, tensors, settings)
        description = settings.short() + (f'; -inf Pad folded into MaxPool: {fixes}'
                                          if fixes else '')
        results.append(VariantResult(key if i else 'int8', path, description, settings))
        log(saturation_report(saturation_risks(path), key))

    log(f'timing {len(results)} models, {runs} interleaved runs each, {threads} threads')
    benchmark(results, card.input.name, timing, runs, threads)
    evaluate_accuracy(card, results, threads, digits)
    if card.task is Task.DETECTION:
        held = agreement_frames(calib.video, calib.frame_ids, agreement_count)
        log(f'agreement with fp32: {held.source}')
        measure_detection_agreement(card, results, held, threads)
    report = OptimizationReport(card, results, calib.source, threads)
    report.goal = check_goal(base, results[2 if offline else 1], card.task)

    for result in results[1:]:
        measured = {k: v for k, v in result.summary(base).items()
                    if k in ('run_ms_mean', 'run_ms_p50', 'speedup_mean', 'speedup_p50',
                             'recall', 'precision', 'tp', 'fp', 'fn', 'accuracy', 'metric',
                             'agreement', 'close_ups', 'near_pedestrians')}
        measured['baseline_fp32'] = {k: v for k, v in base.summary().items()
                                     if k in ('run_ms_mean', 'run_ms_p50', 'recall',
                                              'precision', 'accuracy', 'close_ups',
                                              'near_pedestrians')}
        measured['threads'] = threads
        measured['machine'] = cpu_summary()
        derivation: dict[str, Any] = {'optimization': {**common, 'kind': result.description}}
        if result.settings is not None:
            derivation['optimization'].update(
                quantization=asdict(result.settings) | {
                    'exclude_nodes': list(result.settings.exclude_nodes)},
                calibration={'source': calib.source, 'frames': [
                    i if isinstance(i, int) else str(i) for i in calib.frame_ids]})
        if result.settings is not None:
            derivation['optimization']['saturation'] = saturation_summary(
                saturation_risks(result.path))
        derivation['optimization']['measured'] = measured
        stem = result.path.stem
        result.card_path = out / f'{stem}.yaml'
        write_card(card, result.path, result.card_path, stem, derivation)
        record_variant_reference(card, result.card_path, threads)
    return report


def record_variant_reference(source: ModelCard, card_path: Path, threads: int) -> None:
    """The derived card's own self-check reference, recorded here, where its accuracy was just
    measured (the source card's image, or the package's for its task)."""
    value = REFERENCE_IMAGES[source.task]
    image = model_file(value)
    if source.reference is not None:
        image = source.reference.image
        value = os.path.relpath(image, card_path.parent)
    engine = InferenceEngine(load_model_card(card_path), intra_op_threads=threads)
    write_reference(card_path, reference_block(engine, image, value, score_floor(source)))


def saturation_summary(risks: Sequence[SaturationRisk]) -> dict[str, Any]:
    """The int8 convolutions' int16 saturation risk in a card's provenance."""
    return {'convolutions': len(risks), 'depthwise': sum(r.depthwise for r in risks),
            'at_risk': sum(r.at_risk for r in risks),
            'worst_pair': max((r.worst_pair for r in risks if not r.depthwise), default=0),
            'limit': PAIR_LIMIT}


def saturation_report(risks: Sequence[SaturationRisk], name: str) -> str:
    """Per convolution: can it saturate on a CPU without VNNI (AVX2 VPMADDUBSW)?"""
    at_risk = [r for r in risks if r.at_risk]
    lines = [f'{name}: {len(risks)} int8 convolutions ({sum(r.depthwise for r in risks)} '
             f'depthwise, not on the VPMADDUBSW path); {len(at_risk)} can saturate on CPUs '
             f'without VNNI (two same-sign weights of a channel add up to more than '
             f'{PAIR_LIMIT})']
    lines += [f'  AT RISK {r.node}: {r.channels_at_risk}/{r.channels} channels, worst pair '
              f'{r.worst_pair}' for r in at_risk]
    return '\n'.join(lines)


def evaluate_variant(card_path: str | Path, variant_card_path: str | Path, *,
                     calibration: str | None = None,
                     agreement_count: int = DEFAULT_AGREEMENT_FRAMES, threads: int = 2,
                     runs: int = DEFAULT_RUNS, update_card: bool = False,
                     log: Callable[[str], None] = print) -> OptimizationReport:
    """Measure an existing variant card against its source card, without re-quantising.

    Speed (``runs`` > 0), accuracy and, for a detection card, the agreement with fp32 on
    frames of the calibration video that calibration did not use (the calibration frames are
    read from the variant card's ``provenance.optimization.calibration``; ``calibration`` names
    the video when it is not the default vtest.avi). ``update_card``: add the agreement and
    close-up figures to the variant card's ``provenance.optimization.measured`` (the model
    file and the rest of the card stay as they are).
    """
    card = load_model_card(card_path)
    variant_card = load_model_card(variant_card_path)
    optimization = dict(variant_card.provenance.get('optimization') or {})
    source_sha = (optimization.get('derived_from') or {}).get('sha256')
    if source_sha is not None and source_sha != file_sha256(card.model_path):
        raise OptimizationError(f'{variant_card.path} was derived from a model with SHA-256 '
                                f'{source_sha}, not {card.model_path}; pass its source card')
    if variant_card.task != card.task:
        raise OptimizationError(f'{variant_card.path} is a {variant_card.task} card, '
                                f'{card.path} a {card.task} card')
    if threads < 1:
        raise OptimizationError(f'--threads {threads}: expected >= 1 (the same for every model)')
    calib_info = optimization.get('calibration') or {}
    calib_source = str(calib_info.get('source', ''))
    video: Path | None = None
    if calibration is not None:
        video = Path(calibration).expanduser()
        if not video.is_file() or video.suffix.lower() not in VIDEO_EXTENSIONS:
            raise OptimizationError(f'--calibration {calibration}: with --evaluate-only, '
                                    'expected the calibration video file')
        if not calib_source.startswith(video.name):
            raise OptimizationError(f'{variant_card.path} was calibrated on {calib_source!r}, '
                                    f'not on {video.name}')
    elif calib_source.startswith('vtest.avi'):
        from tools.demo.inputs import pedestrian_video
        video = pedestrian_video(log=log)

    name = variant_card.name.removeprefix(card.name + '_') or variant_card.name
    base = VariantResult('fp32', card.model_path, 'source model, ORT online optimisation')
    variant = VariantResult(name, variant_card.model_path,
                            str(optimization.get('kind', f'variant card {variant_card.path}')),
                            card_path=variant_card.path)
    results = [base, variant]
    digits = heldout_digits() if card.task is Task.CLASSIFICATION else None
    timing = timing_tensors(card, digits)
    if runs > 0 and timing:
        log(f'timing 2 models, {runs} interleaved runs each, {threads} threads')
        benchmark(results, card.input.name, timing, runs, threads)
    evaluate_accuracy(card, results, threads, digits)
    if card.task is Task.DETECTION:
        held = (agreement_frames(video, calib_info['frames'], agreement_count)
                if 'frames' in calib_info else HeldOutFrames(
                    [], [], 'skipped: the variant card records no calibration frames'))
        if video is None and 'frames' in calib_info:
            held.source = (f'skipped: calibrated on {calib_source or "an unknown source"}; '
                           'pass the calibration video with --calibration')
        log(f'agreement with fp32: {held.source}')
        measure_detection_agreement(card, results, held, threads)
    report = OptimizationReport(card, results, calib_source or 'unknown', threads)
    if base.times_ms:
        report.goal = check_goal(base, variant, card.task)
    if update_card and card.task is Task.DETECTION:
        update_measured(variant_card.path, {k: variant.accuracy[k] for k in
                                            ('agreement', 'close_ups')},
                        {'close_ups': base.accuracy['close_ups']})
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.optimize``: see ``--help``."""
    parser = argparse.ArgumentParser(
        prog='python -m tools.optimize',
        description='Write the onnxruntime offline-optimised graph and a static int8 variant '
                    'of a model card, measure speed and accuracy of each against the original, '
                    'and write a model card for each.')
    parser.add_argument('--card', required=True, help='model card (YAML) of a float32-input model')
    parser.add_argument('--output-dir', default=str(DEFAULT_OUTPUT_DIR),
                        help='where models and cards go (default %(default)s; "models" to ship)')
    parser.add_argument('--calibration', default=None,
                        help='video, image folder or glob of images (default: vtest.avi, '
                             'without the labelled frames)')
    parser.add_argument('--frames', type=int, default=DEFAULT_FRAMES,
                        help='calibration frames, evenly spaced (default %(default)s)')
    parser.add_argument('--threads', type=int, default=2,
                        help='intra-op threads, the same for every model (default %(default)s)')
    parser.add_argument('--runs', type=int, default=DEFAULT_RUNS,
                        help='timed runs per model (default %(default)s)')
    parser.add_argument('--variants', default=DEFAULT_VARIANT,
                        help=f'comma-separated quantisation variants, the first is the main one '
                             f'(default %(default)s; known: {", ".join(VARIANTS)})')
    parser.add_argument('--zoom', type=float, default=0.5,
                        help='detection cards: add this fraction of zoomed crops of the '
                             'calibration frames (default %(default)s, 0 for none)')
    parser.add_argument('--no-offline', action='store_true',
                        help='do not write the offline-optimised fp32 graph')
    parser.add_argument('--agreement-frames', type=int, default=DEFAULT_AGREEMENT_FRAMES,
                        help='detection cards: compare each variant with fp32 on this many '
                             'frames of the calibration video that calibration did not use '
                             '(default %(default)s, 0 for none)')
    parser.add_argument('--evaluate-only', metavar='VARIANT_CARD', default=None,
                        help='measure this existing variant card (e.g. models/'
                             'nanodet_m_416_int8.yaml) against --card, writing no model; '
                             '--calibration then names its calibration video if that was not '
                             'vtest.avi; --runs 0 skips timing')
    parser.add_argument('--update-card', action='store_true',
                        help='with --evaluate-only: add the agreement and close-up figures to '
                             "the variant card's provenance.optimization.measured")
    parser.add_argument('--json', default=None, help='also write the report as JSON here')
    args = parser.parse_args(argv)
    command = 'python -m tools.optimize ' + shlex.join(
        list(sys.argv[1:] if argv is None else argv))
    from ros_onnx_vision.inference.model_card import ModelCardError
    if args.update_card and not args.evaluate_only:
        parser.error('--update-card needs --evaluate-only (optimize writes its cards anyway)')
    try:
        if args.evaluate_only:
            variant = load_model_card(args.evaluate_only)
            print(saturation_report(saturation_risks(variant.model_path), variant.name))
            report = evaluate_variant(args.card, args.evaluate_only,
                                      calibration=args.calibration,
                                      agreement_count=args.agreement_frames,
                                      threads=args.threads, runs=args.runs,
                                      update_card=args.update_card)
        else:
            report = optimize(args.card, args.output_dir, calibration=args.calibration,
                              frames=args.frames, threads=args.threads, runs=args.runs,
                              variants=[v.strip() for v in args.variants.split(',')
                                        if v.strip()],
                              zoom=args.zoom, offline=not args.no_offline,
                              agreement_count=args.agreement_frames, command=command)
    except (OptimizationError, ModelCardError) as err:
        print(f'optimize: {err}', file=sys.stderr)
        return 2
    print(report.table())
    goal = report.goal
    if goal:
        metric_key = next((k for k in goal if k.endswith('_drop')), '')
        print(f'goal ({goal["target"]}): {"MET" if goal["met"] else "NOT met"} by '
              f'{goal["variant"]} ({goal["speedup"]:.2f}x, {metric_key} '
              f'{goal.get(metric_key)})')
    for v in report.variants[1:]:
        if args.evaluate_only:
            if args.update_card:
                print(f'updated {v.card_path} (provenance.optimization.measured)')
        else:
            print(f'wrote {v.path} and {v.card_path}')
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
