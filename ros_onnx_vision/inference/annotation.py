"""Drawing results on a BGR image: boxes with label and score, or a digit and its region.

Every function returns the annotated image. With ``in_place=False`` (the default) the input is
left untouched and a BGR copy is drawn on; with ``in_place=True`` a 3-channel uint8 image is
drawn on and returned (a mono image is always copied, since it cannot hold colours).
Sizes scale with the image so the text stays readable from 320x240 to full HD.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ros_onnx_vision.results import Detection, Hypothesis, InferenceResult, Result, Task

FONT = cv2.FONT_HERSHEY_SIMPLEX
# Distinct, saturated BGR colours; the class id picks one.
PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
           (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
           (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0),
           (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255))
NO_DIGIT_COLOR = (0, 0, 255)
ROI_COLOR = (0, 215, 255)


def class_color(class_index: int | None) -> tuple[int, int, int]:
    """BGR colour of a class (the first colour when the index is unknown)."""
    return PALETTE[(class_index or 0) % len(PALETTE)]


def _canvas(image: np.ndarray, in_place: bool) -> np.ndarray:
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image if in_place else image.copy()


def _style(image: np.ndarray) -> tuple[float, int, int]:
    """Font scale, text thickness and line thickness for the image size."""
    short = min(image.shape[:2])
    font_scale = max(0.45, short / 800)
    return font_scale, max(1, round(font_scale * 1.8)), max(2, round(short / 240))


def draw_label(image: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int],
               font_scale: float, thickness: int, above: bool = True) -> None:
    """Text on a filled box of ``color`` at (x, y), above that point if there is room.

    The box is kept inside the image; the text is black or white, whichever contrasts more.
    """
    (tw, th), base = cv2.getTextSize(text, FONT, font_scale, thickness)
    pad = max(2, th // 4)
    box_h = th + base + 2 * pad
    height, width = image.shape[:2]
    top = y - box_h if above and y - box_h >= 0 else y
    top = int(np.clip(top, 0, max(height - box_h, 0)))
    left = int(np.clip(x, 0, max(width - tw - 2 * pad, 0)))
    cv2.rectangle(image, (left, top), (left + tw + 2 * pad, top + box_h), color, cv2.FILLED)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(image, text, (left + pad, top + pad + th), FONT, font_scale, ink, thickness,
                cv2.LINE_AA)


def draw_detections(image: np.ndarray, detections: Sequence[Detection], *,
                    in_place: bool = False) -> np.ndarray:
    """Boxes with 'label score' (and '#id' for a detection with a ``track_id``)."""
    canvas = _canvas(image, in_place)
    font_scale, text_thickness, line = _style(canvas)
    corners = [tuple(int(round(v)) for v in det.box) for det in detections]
    for det, (x1, y1, x2, y2) in zip(detections, corners):
        cv2.rectangle(canvas, (x1, y1), (x2, y2), class_color(det.class_index), line)
    # Labels after all boxes, the best detection last so that its label is never covered.
    for index in sorted(range(len(detections)), key=lambda i: detections[i].score):
        det = detections[index]
        text = f'{det.label} {det.score:.2f}'
        if det.track_id:
            text = f'#{det.track_id} {text}'
        x1, y1 = corners[index][:2]
        draw_label(canvas, text, x1 - line // 2, y1 - line // 2, class_color(det.class_index),
                   font_scale, text_thickness)
    return canvas


def draw_classification(image: np.ndarray, classifications: Sequence[Hypothesis], *,
                        roi_box: tuple[int, int, int, int] | None = None,
                        digit_box: tuple[int, int, int, int] | None = None,
                        no_digit: str | None = None, in_place: bool = False) -> np.ndarray:
    """The best class and score (large), the searched region and the digit's box.

    When ``no_digit`` is given, 'no digit' and the reason are shown instead.
    """
    canvas = _canvas(image, in_place)
    font_scale, text_thickness, line = _style(canvas)
    if roi_box is not None:
        cv2.rectangle(canvas, roi_box[:2], roi_box[2:], ROI_COLOR, max(1, line // 2))
    anchor = roi_box[:2] if roi_box is not None else (0, 0)
    if no_digit is not None or not classifications:
        draw_label(canvas, 'no digit', anchor[0], anchor[1], NO_DIGIT_COLOR, font_scale * 1.4,
                   text_thickness + 1, above=roi_box is not None)
        if no_digit:
            reason, small = no_digit, font_scale * 0.8
            # Shorten the reason until it fits the width of the image.
            while len(reason) > 4 and cv2.getTextSize(reason, FONT, small, text_thickness)[0][
                    0] > canvas.shape[1] - 8:
                reason = reason[:-4] + '...'
            draw_label(canvas, reason, 0, canvas.shape[0], NO_DIGIT_COLOR, small,
                       text_thickness)
        return canvas
    best = classifications[0]
    color = class_color(best.class_index)
    if digit_box is not None:
        cv2.rectangle(canvas, digit_box[:2], digit_box[2:], color, line)
        anchor = digit_box[:2]
    draw_label(canvas, f'{best.label} {best.score:.2f}', anchor[0], anchor[1], color,
               font_scale * 1.6, text_thickness + 1)
    return canvas


def draw_result(image: np.ndarray, result: InferenceResult, *,
                in_place: bool = False) -> np.ndarray:
    """Draw an :class:`InferenceResult` of either task."""
    if result.task is Task.DETECTION:
        return draw_detections(image, result.detections, in_place=in_place)
    return draw_classification(image, result.classifications, roi_box=result.roi_box,
                               digit_box=result.digit_box, no_digit=result.no_digit,
                               in_place=in_place)


def draw_confirmed(image: np.ndarray, raw: Sequence[Result], confirmed: Sequence[Result] | None,
                   task: Task, caption: str = '') -> np.ndarray:
    """Confirmed results bold over thin raw ones, on a copy of a BGR image.

    ``raw`` / ``confirmed``: detections (confirmed ones carry their ``track_id``) or class
    hypotheses, best first. ``confirmed`` None means no smoothed result is known
    (smoothing_node not running).
    """
    canvas = _canvas(image, in_place=False)
    font_scale, text_thickness, line = _style(canvas)
    if task is Task.DETECTION:
        for det in raw:
            x1, y1, x2, y2 = (int(v) for v in det.box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (170, 170, 170), 1)
        for det in confirmed or []:
            x1, y1, x2, y2 = (int(v) for v in det.box)
            track = det.track_id
            color = class_color(int(track) if track.isdigit() else 0)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, line)
            draw_label(canvas, f'#{track} {det.label} {det.score:.2f}', x1, y1, color,
                       font_scale, text_thickness)
        status = f'confirmed {len(confirmed or [])}, raw {len(raw)}'
    else:
        best = raw[0].label if raw else '-'
        label = confirmed[0].label if confirmed else None
        if label is not None:
            draw_label(canvas, label, 10, canvas.shape[0] - 10, (0, 150, 0), font_scale * 3,
                       text_thickness * 3)
        status = f'raw {best}, confirmed {label if label is not None else "nothing"}'
    if confirmed is None:
        status += ' (no smoothed result yet)'
    draw_label(canvas, f'{caption}  {status}'.strip(), 4, 4, (40, 40, 40), font_scale,
               text_thickness, above=False)
    return canvas
