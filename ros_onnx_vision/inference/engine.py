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
from ros_onnx_vision.running_mean import RunningMean

__all__ = ['extra_feed', 'InferenceEngine', 'ModelLoadError', 'PreparedFrame', 'ProviderError',
           'ProviderReport', 'SessionOutputs', 'TimingStats']


def extra_feed(card: ModelCard, source_size: tuple[int, int],
               input_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The card's extra (non-image) inputs for one frame, in the model's dtype and shape.

    Needs a card checked against its model (check_model_against_card fills dtype and shape).
    """
    feed = {}
    for extra in card.extra_inputs:
        assert extra.dtype is not None and extra.shape is not None, 'card not checked'
        values = np.asarray(extra.numbers(source_size, input_size), np.float64)
        if np.issubdtype(np.dtype(extra.dtype), np.integer):
            values = np.rint(values)
        feed[extra.name] = values.astype(extra.dtype).reshape(extra.shape)
    return feed


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
        self._means = (RunningMean(), RunningMean(), RunningMean())  # pre, run, post

    @property
    def count(self) -> int:
        """Frames recorded since the last reset."""
        return self._means[0].count

    def add(self, timings: StageTimings) -> None:
        """Record one frame."""
        self.latest = timings
        for mean, ms in zip(self._means, (timings.pre_ms, timings.run_ms, timings.post_ms)):
            mean.add(ms)

    @property
    def mean(self) -> StageTimings:
        """Mean per stage (zeros before the first frame)."""
        return StageTimings(*(mean.value for mean in self._means))

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

    def infer(self, image: np.ndarray, color_order: str = 'BGR') -> InferenceResult:
        """Run one frame: ``image`` is uint8 HxW or HxWxC in ``color_order`` (BGR, RGB, ...).

        Returns an :class:`InferenceResult` with boxes in ``image`` pixels and the timings of
        this frame, also added to :attr:`timings`. The same as :meth:`prepare`, :meth:`run`
        and :meth:`decode` in a row.
        """
        frame = self.prepare(image, color_order)
        return self.decode(frame, self.run(frame))

    def prepare(self, image: np.ndarray, color_order: str = 'BGR',
                card: ModelCard | None = None) -> PreparedFrame:
        """Pre-processing alone (for the digit card: finding the digit first).

        ``card``: decode with this card instead of :attr:`card` (the self-check's base card).

        The three stages may run in three threads, one frame in each: each reads only its
        frame and the session (whose run() is thread-safe), and only :meth:`decode` records
        timings.
        """
        card = card or self.card  # read once: overrides may replace it meanwhile
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
        feed = {frame.card.input.name: frame.tensor}
        if frame.card.extra_inputs and frame.scale is not None:
            scale = frame.scale
            feed.update(extra_feed(frame.card, (scale.source_width, scale.source_height),
                                   (scale.input_width, scale.input_height)))
        t0 = time.perf_counter()
        outputs = self.session.run(self.output_names, feed)
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
            detections, implausible = self._detect(card, outputs.outputs, frame.scale)
            result = InferenceResult(card.task, frame.size, StageTimings(),
                                     detections=detections, implausible=implausible)
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
                scale: ScaleInfo) -> tuple[list[Detection], str | None]:
        """Detections, and why the decoder cannot have read the outputs right (or None)."""
        decoder = decoders.DETECTION_DECODERS[card.decoder.type]
        input_size = (scale.input_width, scale.input_height)
        extra: dict[str, Any] = {}
        if decoder.takes_source_size:
            extra['source_size'] = (scale.source_width, scale.source_height)
        candidates = decoder.decode(outputs, input_size, card.decoder.options,
                                    card.score_threshold, card.class_filter_ids, **extra)
        implausible = decoders.implausible_output(candidates, input_size, card.score_threshold,
                                                  len(card.labels) or None)
        return postprocess(
            candidates, scale, score_threshold=card.score_threshold, nms_iou=card.nms_iou,
            labels=card.labels, class_ids=card.class_filter_ids,
            max_detections=card.max_detections,
            apply_nms=not decoder.applies_nms or bool(card.decoder.options.get('nms'))
        ), implausible

    @staticmethod
    def _classify(card: ModelCard, outputs: dict[str, np.ndarray]) -> list[Hypothesis]:
        """Top-k (with the runners-up, for consumers) when the best reaches the threshold."""
        decoder = decoders.CLASSIFICATION_DECODERS[card.decoder.type]
        ids, scores = decoder.decode(outputs, card.decoder.options, card.top_k)
        if len(scores) == 0 or scores[0] < card.score_threshold:
            return []
        return [Hypothesis(card.label(int(i)), float(s), class_index=int(i))
                for i, s in zip(ids, scores)]
