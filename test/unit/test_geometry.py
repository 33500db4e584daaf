"""The one IoU every stage uses: NMS, the tracker and the accuracy evaluation."""

import numpy as np

from ros_onnx_vision.geometry import iou, iou_matrix


def test_iou_matrix():
    overlaps = iou_matrix([(0, 0, 10, 10)], [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30),
                                             (3, 3, 3, 8)])
    assert overlaps.shape == (1, 4)
    np.testing.assert_allclose(overlaps[0], [1.0, 50 / 150, 0.0, 0.0])
    assert iou_matrix([], [(0, 0, 1, 1)]).shape == (0, 1)


def test_scalar_iou_matches_the_matrix():
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == 50 / 150
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges do not overlap
    assert iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0  # empty boxes: 0, not NaN
    assert iou((4, 4, 2, 2), (0, 0, 10, 10)) == 0.0  # inverted box counts as empty
