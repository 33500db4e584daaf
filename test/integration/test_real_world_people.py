"""People at every distance: the default detector on near pedestrians it never saw.

``../shared/data/pennfudan_dev`` holds 50 photos of pedestrians at 2-10 m (people 200-390 px
tall) with boxes; the project's own labels (test/data) are mostly surveillance-scale people.
The default card must hold on both. ``../shared/data/people_varied_dev`` (COCO val: rooms,
sports, crowds, night, person-free scenes) measures what it does beyond pedestrians. Skipped
where a development set is not beside the checkout (their licences forbid copying them into
the repository).
"""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO
from tools.evaluate.people import (evaluate_engine, load_box_labels, NEGATIVES, PENNFUDAN,
                                   PEOPLE_VARIED)
from ros_onnx_vision.inference.engine import InferenceEngine
from ros_onnx_vision.inference.model_card import load_model_card
from ros_onnx_vision.ros.parameters import InferenceParameters

pytestmark = pytest.mark.skipif(not (PENNFUDAN / 'labels.json').is_file(),
                                reason=f'no development set at {PENNFUDAN}')


def default_card() -> str:
    """The node's default model, which config/human_detection.yaml must not replace."""
    config = yaml.safe_load((REPO / 'config' / 'human_detection.yaml').read_text())
    model = next(v['ros__parameters'].get('model') for k, v in config.items()
                 if k.endswith('inference_node'))
    assert model is None, 'the human detection pipeline runs the node default'
    return InferenceParameters().model


@pytest.fixture(scope='module')
def engine() -> InferenceEngine:
    return InferenceEngine(load_model_card(REPO / 'models' / default_card()))


def test_default_detector_finds_near_pedestrians(engine):
    evaluation = evaluate_engine(engine, load_box_labels(PENNFUDAN / 'labels.json'), PENNFUDAN)
    print('\n' + evaluation.table())
    assert evaluation.recall >= 0.90, f'recall {evaluation.recall:.3f}'
    assert evaluation.precision >= 0.85, f'precision {evaluation.precision:.3f}'


def test_int8_default_stays_close_on_near_pedestrians():
    """The shipped int8 variant: measured 0.91 / 0.875 against fp32's 0.95 / 0.89."""
    card = default_card().replace('.yaml', '_int8.yaml')
    engine = InferenceEngine(load_model_card(REPO / 'models' / card))
    evaluation = evaluate_engine(engine, load_box_labels(PENNFUDAN / 'labels.json'), PENNFUDAN)
    assert evaluation.recall >= 0.88, f'recall {evaluation.recall:.3f}'
    assert evaluation.precision >= 0.85, f'precision {evaluation.precision:.3f}'


def test_default_detector_keeps_distant_pedestrians_and_no_false_person(engine):
    evaluation = evaluate_engine(engine)  # the project's labels: vtest and four photos
    print('\n' + evaluation.table())
    assert evaluation.recall >= 0.90, f'recall {evaluation.recall:.3f}'
    assert evaluation.precision >= 0.90, f'precision {evaluation.precision:.3f}'
    assert evaluation.negative_hits == {name: 0 for name in NEGATIVES}


@pytest.mark.skipif(not (PEOPLE_VARIED / 'labels.json').is_file(),
                    reason=f'no development set at {PEOPLE_VARIED}')
def test_default_detector_in_varied_scenes_and_no_false_person(engine):
    """Measured (docs/benchmark/people_accuracy.md): recall 0.353, precision 0.972 at the
    shipped 0.45, no box on the 21 person-free images. Issue 21's target (recall >= 0.75 at
    precision >= 0.85) is not reached by any shipped card: these floors keep today's figures
    (and 0.325 would give 0.60 / 0.87 here, but 0.73 precision on Penn-Fudan, whose
    background people are unlabelled)."""
    evaluation = evaluate_engine(engine, load_box_labels(PEOPLE_VARIED / 'labels.json'),
                                 PEOPLE_VARIED)
    print('\n' + evaluation.table())
    free = evaluation.negative_hits
    assert len(free) >= 15, 'the set has person-free images'
    assert free == {name: 0 for name in free}, 'a false person on a person-free image'
    assert evaluation.recall >= 0.33, f'recall {evaluation.recall:.3f}'
    assert evaluation.precision >= 0.90, f'precision {evaluation.precision:.3f}'


@pytest.mark.skipif(not (PEOPLE_VARIED / 'labels.json').is_file(),
                    reason=f'no development set at {PEOPLE_VARIED}')
def test_rethresholded_figures_equal_a_run_at_that_threshold(engine):
    labels = load_box_labels(PEOPLE_VARIED / 'labels.json')
    direct = evaluate_engine(engine, labels, PEOPLE_VARIED)
    collected = evaluate_engine(engine, labels, PEOPLE_VARIED, score_threshold=0.1)
    assert collected.at(engine.card.score_threshold).to_dict() == direct.to_dict()
    curve = collected.pr_curve([0.1, 0.3, engine.card.score_threshold, 0.7])
    recalls = [row['recall'] for row in curve]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] > recalls[-1]


@pytest.mark.skipif(not (PEOPLE_VARIED / 'labels.json').is_file(),
                    reason=f'no development set at {PEOPLE_VARIED}')
def test_people_report_writes_the_table_and_a_plot_per_set(tmp_path, engine):
    from tools.evaluate import people_report
    assert people_report.main(['--output', str(tmp_path)]) == 0
    page = (tmp_path / 'people_accuracy.md').read_text()
    for key in ('project', 'pennfudan', 'varied'):
        assert (tmp_path / f'pr_{key}.png').stat().st_size > 10_000, key
        assert f'| {key} | {default_card()} | {engine.card.score_threshold} |' in page, key
