"""The inference engine: one model card, one ONNX Runtime session, one frame at a time.

:class:`InferenceEngine` runs pre-processing, ``session.run`` and decoding for one frame and
times each stage. The ROS node (and the offline command) call :meth:`InferenceEngine.infer`
per frame.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
import time
from typing import Any, Sequence

import numpy as np

from ros_onnx_vision.inference import decoders
from ros_onnx_vision.inference.digit_finder import extract_digit
from ros_onnx_vision.inference.model_card import (apply_overrides, check_model_against_card,
                                                  load_model_card, ModelCard)
from ros_onnx_vision.inference.postprocessing import postprocess
from ros_onnx_vision.inference.preprocessing import preprocess, ScaleInfo
from ros_onnx_vision.inference.session import (create_session, ModelLoadError, ProviderError,
                                               ProviderReport)
from ros_onnx_vision.results import Detection, Hypothesis, InferenceResult, StageTimings, Task

__all__ = ['InferenceEngine', 'ModelLoadError', 'ProviderError', 'ProviderReport', 'TimingStats']

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

    def infer(self, image: np.ndarray, color_order: str = 'BGR') -> InferenceResult:
        """Run one frame: ``image`` is uint8 HxW or HxWxC in ``color_order`` (BGR, RGB, ...).

        Returns an :class:`InferenceResult` with boxes in ``image`` pixels and the timings of
        this frame, also added to :attr:`timings`.
        """
        card = self.card  # read once: overrides may replace it meanwhile
        size = (int(image.shape[1]), int(image.shape[0]))
        t0 = time.perf_counter()
        extraction = None
        if card.digit is not None:
            extraction = extract_digit(image, card.digit, color_order)
            if extraction.image is None:
                timings = StageTimings(pre_ms=(time.perf_counter() - t0) * 1e3)
                self.timings.add(timings)
                return InferenceResult(card.task, size, timings, no_digit=extraction.reason,
                                       roi_box=extraction.roi_box)
            tensor, scale = preprocess(extraction.image, card.input, 'GRAY')
        else:
            tensor, scale = preprocess(image, card.input, color_order)
        t1 = time.perf_counter()
        outputs = dict(zip(self.output_names,
                           self.session.run(self.output_names, {card.input.name: tensor})))
        t2 = time.perf_counter()
        if card.task is Task.DETECTION:
            result = InferenceResult(card.task, size, StageTimings(),
                                     detections=self._detect(card, outputs, scale), scale=scale)
        elif extraction is None:
            result = InferenceResult(card.task, size, StageTimings(),
                                     classifications=self._classify(card, outputs))
        else:
            classes = self._classify(card, outputs)
            unsure = None if classes else (
                f'not sure: the best guess scores below the threshold {card.score_threshold}')
            result = InferenceResult(card.task, size, StageTimings(), classifications=classes,
                                     no_digit=unsure, roi_box=extraction.roi_box,
                                     digit_box=None if unsure else extraction.box)
        timings = StageTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3,
                               (time.perf_counter() - t2) * 1e3)
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
