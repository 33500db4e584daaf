"""The offline command: run a model card on image and video files, print JSON lines.

``python -m ros_onnx_vision infer --model CARD.yaml FILES... [--annotate-dir DIR]``

One JSON object per frame on stdout: ``{"file", "frame", "detections": [{"class_id", "label",
"score", "box": [x1, y1, x2, y2]}]}`` (source pixels) for detection cards, or ``{"file",
"frame", "classification": [{"class_id", "label", "score"}]}`` for classification cards; digit
cards add ``"no_digit": reason`` (with an empty list) when the frame holds no digit, and
``"digit_box"`` when it does. The provider report and mean timings go to stderr.
Before the first frame, the card's self-check runs its reference image on this provider and CPU
(``inference.self_check``); a model that gives the wrong result here stops the command.
A frame whose outputs the card's decoder cannot have read right (implausible boxes or scores:
the card does not fit the model) gets a warning on stderr and ``"implausible"`` in its JSON.
Exit codes: 0 done, 1 the self-check failed (the model runs wrong here) or every frame was
implausible, 2 bad arguments / missing or invalid model, card or file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Sequence, TextIO

import cv2
import numpy as np

from ros_onnx_vision.camera.frame_sources import (FrameSource, open_source, SourceError,
                                                  SourceKind, VIDEO_EXTENSIONS)
from ros_onnx_vision.inference.annotation import draw_result
from ros_onnx_vision.inference.model_card import load_model_card, ModelCardError
from ros_onnx_vision.inference.self_check import open_checked_engine, SelfCheckError
from ros_onnx_vision.inference.session import ModelLoadError, ProviderError


MAX_WARNINGS = 5  # implausible frames reported one by one; the rest are only counted


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``infer``."""
    parser = argparse.ArgumentParser(
        prog='python -m ros_onnx_vision infer',
        description='Run an ONNX model card on images or videos; print one JSON object per '
                    'frame.')
    parser.add_argument('--model', required=True, help='model card (YAML next to the model)')
    parser.add_argument('files', nargs='+', metavar='FILE', help='images or videos')
    parser.add_argument('--annotate-dir', help='write annotated images / videos here')
    parser.add_argument('--score-threshold', type=float, help="override the card's score")
    parser.add_argument('--nms-iou', type=float, help="override the card's NMS IoU")
    parser.add_argument('--class-filter',
                        help="comma-separated labels to keep ('' keeps all); overrides card")
    parser.add_argument('--top-k', type=int, help="override the card's top_k")
    parser.add_argument('--digit-roi', type=float, nargs=4, metavar=('X', 'Y', 'W', 'H'),
                        help='digit cards: region searched, as fractions of the image')
    parser.add_argument('--providers', default='cpu',
                        help='comma-separated execution providers in order of preference '
                             '(tensorrt, cuda, cpu or full onnxruntime names); default cpu')
    parser.add_argument('--strict-providers', action='store_true',
                        help='fail when a requested provider cannot be used')
    parser.add_argument('--threads', type=int, default=0,
                        help='onnxruntime intra-op threads (0: automatic)')
    parser.add_argument('--max-frames', type=int, default=0,
                        help='stop each video after this many frames (0: all)')
    return parser


class _AnnotationWriter:
    """Annotated frames to ``DIR/<stem>.png`` (images) or ``DIR/<stem>.avi`` (videos)."""

    def __init__(self, directory: Path, source: Path, fps: float, is_video: bool) -> None:
        self.directory = directory
        self.source = source
        self.fps = fps
        self.is_video = is_video
        self.video: cv2.VideoWriter | None = None

    def write(self, frame_index: int, image: np.ndarray) -> None:
        if not self.is_video:
            cv2.imwrite(str(self.directory / f'{self.source.stem}.png'), image)
            return
        if self.video is None:
            path = self.directory / f'{self.source.stem}.avi'
            self.video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'),
                                         self.fps or 10.0, (image.shape[1], image.shape[0]))
        self.video.write(image)

    def close(self) -> None:
        if self.video is not None:
            self.video.release()


def _kind(path: Path) -> SourceKind:
    """A video by its suffix, else an image (OpenCV reads images by content, any suffix)."""
    return SourceKind.VIDEO if path.suffix.lower() in VIDEO_EXTENSIONS else SourceKind.IMAGE


def _open(path: Path) -> FrameSource:
    """The camera's own reader for one file: the same decoding as camera_node."""
    try:
        return open_source(str(path), _kind(path), loop=False)
    except SourceError as error:
        raise _UsageError(str(error)) from None


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the parsed command; JSON lines to ``out``, report and errors to ``err``."""
    card_path = Path(args.model)
    if not card_path.is_file():
        raise _UsageError(f'model card {card_path} does not exist')
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise _UsageError(f'input file(s) not found: {", ".join(missing)}')
    for path in files:  # before any output, so that a bad file in the list fails fast
        if _kind(path) is SourceKind.IMAGE and not cv2.haveImageReader(str(path)):
            raise _UsageError(f'cannot read image {path} (not an image or video OpenCV can '
                              'decode)')
    card = load_model_card(card_path)
    engine, check = open_checked_engine(
        card, lambda text: print(f'warning: {text}', file=err),
        providers=[p for p in args.providers.split(',') if p], strict=args.strict_providers,
        intra_op_threads=args.threads)
    class_filter = None
    if args.class_filter is not None:
        class_filter = [c.strip() for c in args.class_filter.split(',') if c.strip()]
    engine.apply_overrides(score_threshold=args.score_threshold, nms_iou=args.nms_iou,
                           class_filter=class_filter, top_k=args.top_k,
                           digit_roi=args.digit_roi)
    print(engine.provider_report.summary(), file=err)
    print(f'self-check passed in {check.elapsed_ms:.0f} ms: {check.message}', file=err)
    annotate_dir = Path(args.annotate_dir) if args.annotate_dir else None
    if annotate_dir is not None:
        annotate_dir.mkdir(parents=True, exist_ok=True)
    frames = implausible = 0
    for path in files:
        source = _open(path)
        writer = (_AnnotationWriter(annotate_dir, path, source.nominal_fps or 0.0,
                                    source.kind is SourceKind.VIDEO) if annotate_dir else None)
        try:
            while (frame := source.read()) is not None:
                if args.max_frames and frame.index >= args.max_frames:
                    break
                image = frame.image
                result = engine.infer(image, 'GRAY' if image.ndim == 2 else 'BGR')
                record = {'file': str(path), 'frame': frame.index, **result.to_dict()}
                frames += 1
                if result.implausible is not None:
                    implausible += 1
                    if implausible <= MAX_WARNINGS:
                        print(f'warning: {path} frame {frame.index}: the outputs do not fit '
                              f'decoder {card.decoder.type!r} and its options: '
                              f'{result.implausible}', file=err)
                out.write(json.dumps(record) + '\n')
                if writer is not None:
                    writer.write(frame.index, draw_result(image, result, in_place=True))
        finally:
            source.close()
            if writer is not None:
                writer.close()
    mean = engine.timings.mean
    print(f'{engine.timings.count} frame(s); mean ms: pre-processing {mean.pre_ms:.2f}, '
          f'session run {mean.run_ms:.2f}, decoding {mean.post_ms:.2f}', file=err)
    if implausible:
        print(f'{"error" if implausible == frames else "warning"}: {implausible} of {frames} '
              f'frame(s) gave outputs that decoder {card.decoder.type!r} cannot have read '
              f'right: the card {card_path} does not fit the model '
              '(see docs/bring_your_own_model.md)', file=err)
    return 1 if frames and implausible == frames else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``infer``; ``argv`` excludes the program name (a leading 'infer' is ok)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == 'infer':
        argv = argv[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed the usage error
        return int(exit_.code or 0)
    try:
        return run(args, sys.stdout, sys.stderr)
    except SelfCheckError as error:  # the model runs wrong here: nothing it says is trusted
        print(f'error: {error}', file=sys.stderr)
        return 1
    except (_UsageError, ModelCardError, ModelLoadError, ProviderError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
