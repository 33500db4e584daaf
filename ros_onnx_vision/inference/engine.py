"""The inference engine: one model card, one ONNX Runtime session, one frame at a time.

:class:`InferenceEngine` runs pre-processing, ``session.run`` and decoding for one frame and
times each stage. The offline command calls :meth:`InferenceEngine.infer` per frame; the ROS
node calls its three stages (prepare, run, decode) from three threads, to overlap them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
import time
from typing import Any, Sequence

import numpy as np

from ros_onnx_vision.inference import decoders
from ros_onnx_vision.inference.digit_finder import DigitExtraction, extract_digit
from ros_onnx_vision.inference.model_card import (apply_overrides, check_model_against_card,
                                                  load_model_card, ModelCard)
from ros_onnx_vision.inference.postprocessing import postprocess
from ros_onnx_vision.inference.preprocessing import preprocess, ScaleInfo
from ros_onnx_vision.inference.session import (create_session, ModelLoadError, ProviderError,
                                               ProviderReport)
from ros_onnx_vision.results import Detection, Hypothesis, InferenceResult, StageTimings, Task

__all__ = ['InferenceEngine', 'ModelLoadError', 'PreparedFrame', 'ProviderError', 'ProviderReport',
           'SessionOutputs', 'TimingStats']


@dataclasses.dataclass(frozen=True)
class PreparedFrame:
    """A frame made ready for the session: the card it was made for, and its tensor."""

    card: ModelCard  # as it was when the frame was prepared (overrides may change it later)
    size: tuple[int, int]  # source width, height
    tensor: np.ndarray | None  # None: the digit card found no digit to classify
    scale: ScaleInfo | None
    extraction: DigitExtraction | None  # the digit card's search, else None
    pre_ms: float


@dataclasses.dataclass(frozen=True)
class SessionOutputs:
    """The session's outputs by name, and how long the run took."""

    outputs: dict[str, np.ndarray]
    run_ms: float


class TimingStats:
    """Latest per-stage timings and running means over the frames seen since reset."""

    def __init__(self) -> None:
        self.latest = StageTimings()
        self.count = 0
        self._sums = np.zeros(3)

    def add(self, timings: StageTimings) -> None:
        """Record one frame."""
        self.latest = timings
        self.count += 1
        self._sums += (timings.pre_ms, timings.run_ms, timings.post_ms)

    @property
    def mean(self) -> StageTimings:
        """Mean per stage (zeros before the first frame)."""
        pre, run, post = self._sums / max(self.count, 1)
        return StageTimings(float(pre), float(run), float(post))

    def reset(self) -> None:
        """Forget all frames."""
        self.__init__()


class InferenceEngine:
    """Card-driven inference: pre-processing, ``session.run``, decoding, timings.

    Build it once (it owns the session), then call :meth:`infer` per frame. :attr:`card` is
    :attr:`base_card` (the card as checked against the model) with the run-time overrides of
    the last :meth:`apply_overrides` on top. It is replaced as a whole, and :meth:`infer` reads
    it once per frame, so overrides may be applied from another thread between frames.
    :attr:`timings` keeps the per-stage means of every frame since its last reset.
    """

    def __init__(self, card: ModelCard, *, providers: Sequence[str] = ('cpu',),
                 strict: bool = False, intra_op_threads: int = 0,
                 graph_optimization: str = 'all', optimized_model_cache: str = '',
                 intra_op_spinning: bool = False) -> None:
        """Create the session and check the model against the card (raises ModelCardError)."""
        self.session, self.provider_report = create_session(
            card.model_path, providers, strict=strict, intra_op_threads=intra_op_threads,
            graph_optimization=graph_optimization, optimized_model_cache=optimized_model_cache,
            intra_op_spinning=intra_op_spinning)
        self.base_card = check_model_against_card(card, self.session.get_inputs(),
                                                  self.session.get_outputs())
        self.card = self.base_card
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.timings = TimingStats()

    @classmethod
    def from_card_file(cls, path: str | Path, **kwargs: Any) -> InferenceEngine:
        """Load the card at ``path`` and build the engine (keyword arguments as __init__)."""
        return cls(load_model_card(path), **kwargs)

    @property
    def labels(self) -> tuple[str, ...]:
        """Class labels, index = class id."""
        return self.card.labels

    def apply_overrides(self, **overrides: Any) -> None:
        """Run-time parameters on top of the base card, replacing earlier overrides.

        See :func:`model_card.apply_overrides`; raises ModelCardError and keeps the current
        card when a value is invalid.
        """
        self.card = apply_overrides(self.base_card, **overrides)

    def warm_up(self, runs: int = 2) -> float:
        """Run the session on blank input `runs` times; returns the milliseconds it took.

        ONNX Runtime's first runs are slower (buffers, kernels: CenterNet's first two ~45 ms
        against ~29 ms on the 2-core machine; TensorRT builds its engines then), so the first
        frames of a warmed-up pipeline are no slower than the rest. Nothing is recorded in
        :attr:`timings`. A dynamic input size is not warmed up.
        """
        spec = self.card.input
        if spec.width is None or spec.height is None:
            return 0.0
        shape = ((1, spec.channels, spec.height, spec.width) if spec.layout == 'NCHW'
                 else (1, spec.height, spec.width, spec.channels))
        tensor = np.zeros(shape, np.uint8 if spec.dtype == 'uint8' else np.float32)
        t0 = time.perf_counter()
        for _ in range(runs):
            self.session.run(self.output_names, {spec.name: tensor})
        return (time.perf_counter() - t0) * 1e3

    def infer(self, image: np.ndarray, color_order: str = 'BGR') -> InferenceResult:
        """Run one frame: ``image`` is uint8 HxW or HxWxC in ``color_order`` (BGR, RGB, ...).

        Returns an :class:`InferenceResult` with boxes in ``image`` pixels and the timings of
        this frame, also added to :attr:`timings`. The same as :meth:`prepare`, :meth:`run`
        and :meth:`decode` in a row.
        """
        frame = self.prepare(image, color_order)
        return self.decode(frame, self.run(frame))

    def prepare(self, image: np.ndarray, color_order: str = 'BGR') -> PreparedFrame:
        """Pre-processing alone (for the digit card: finding the digit first).

        The three stages may run in three threads, one frame in each: each reads only its
        frame and the session (whose run() is thread-safe), and only :meth:`decode` records
        timings.
        """
        card = self.card  # read once: overrides may replace it meanwhile
        size = (int(image.shape[1]), int(image.shape[0]))
        t0 = time.perf_counter()
        extraction = None
        if card.digit is not None:
            extraction = extract_digit(image, card.digit, color_order)
            if extraction.image is None:
                return PreparedFrame(card, size, None, None, extraction,
                                     (time.perf_counter() - t0) * 1e3)
            tensor, scale = preprocess(extraction.image, card.input, 'GRAY')
        else:
            tensor, scale = preprocess(image, card.input, color_order)
        return PreparedFrame(card, size, tensor, scale, extraction,
                             (time.perf_counter() - t0) * 1e3)

    def run(self, frame: PreparedFrame) -> SessionOutputs:
        """The session run on a prepared frame (none when no digit was found)."""
        if frame.tensor is None:
            return SessionOutputs({}, 0.0)
        t0 = time.perf_counter()
        outputs = self.session.run(self.output_names, {frame.card.input.name: frame.tensor})
        return SessionOutputs(dict(zip(self.output_names, outputs)),
                              (time.perf_counter() - t0) * 1e3)

    def decode(self, frame: PreparedFrame, outputs: SessionOutputs) -> InferenceResult:
        """The result of a run, in source-image pixels; its timings go to :attr:`timings`."""
        card, extraction = frame.card, frame.extraction
        t0 = time.perf_counter()
        if frame.tensor is None:
            assert extraction is not None
            result = InferenceResult(card.task, frame.size, StageTimings(),
                                     no_digit=extraction.reason, roi_box=extraction.roi_box)
        elif card.task is Task.DETECTION:
            assert frame.scale is not None
            result = InferenceResult(
                card.task, frame.size, StageTimings(),
                detections=self._detect(card, outputs.outputs, frame.scale), scale=frame.scale)
        elif extraction is None:
            result = InferenceResult(card.task, frame.size, StageTimings(),
                                     classifications=self._classify(card, outputs.outputs))
        else:
            classes = self._classify(card, outputs.outputs)
            unsure = None if classes else (
                f'not sure: the best guess scores below the threshold {card.score_threshold}')
            result = InferenceResult(card.task, frame.size, StageTimings(),
                                     classifications=classes, no_digit=unsure,
                                     roi_box=extraction.roi_box,
                                     digit_box=None if unsure else extraction.box)
        post_ms = (time.perf_counter() - t0) * 1e3 if frame.tensor is not None else 0.0
        timings = StageTimings(frame.pre_ms, outputs.run_ms, post_ms)
        self.timings.add(timings)
        return dataclasses.replace(result, timings=timings)

    @staticmethod
    def _detect(card: ModelCard, outputs: dict[str, np.ndarray],
                scale: ScaleInfo) -> list[Detection]:
        decoder = decoders.DETECTION_DECODERS[card.decoder.type]
        candidates = decoder.decode(outputs, (scale.input_width, scale.input_height),
                                    card.decoder.options, card.score_threshold,
                                    card.class_filter_ids)
        return postprocess(
            candidates, scale, score_threshold=card.score_threshold, nms_iou=card.nms_iou,
            labels=card.labels, class_ids=card.class_filter_ids,
            max_detections=card.max_detections,
            apply_nms=not decoder.applies_nms or bool(card.decoder.options.get('nms')))

    @staticmethod
    def _classify(card: ModelCard, outputs: dict[str, np.ndarray]) -> list[Hypothesis]:
        """Top-k (with the runners-up, for consumers) when the best reaches the threshold."""
        decoder = decoders.CLASSIFICATION_DECODERS[card.decoder.type]
        ids, scores = decoder.decode(outputs, card.decoder.options, card.top_k)
        if len(scores) == 0 or scores[0] < card.score_threshold:
            return []
        return [Hypothesis(card.label(int(i)), float(s), class_index=int(i))
                for i, s in zip(ids, scores)]
