"""The vision_msgs in use are wire-compatible with upstream 4.1.1: all 16 type hashes match."""

from __future__ import annotations

import json
import os
from pathlib import Path
import sys

import pytest

# RIHS01 hashes of the upstream vision_msgs 4.1.1 definitions (Jazzy and Kilted generators).
UPSTREAM = {
    'BoundingBox2D': '008eacbb0cf8f26e83795547bed013eec3675485ef386ec056d80eaaf1c1ce2f',
    'BoundingBox2DArray': '2464e82838009386d371b523211c21c91d74d313fcdd6788223c531d621cf691',
    'BoundingBox3D': 'bbb73a65c163d7f9bb29009c7bde9f7faa576bd2d23299c4511d19230dab4698',
    'BoundingBox3DArray': 'a81938db9576b10c2eecd7c5a5da3eac496efd00221b25ed051dfbc81fb56da6',
    'Classification': 'f74db28d0eaef3afb78f48bf2161cd709a1383a0309d3454383b25be11345143',
    'Detection2D': '0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea',
    'Detection2DArray': '214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968',
    'Detection3D': 'ddd703be132ab0b69d33121f1bb034132bfbb3b0ac5f9fb1516005ba1c8a265b',
    'Detection3DArray': '793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018',
    'LabelInfo': '3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783',
    'ObjectHypothesis': '51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90',
    'ObjectHypothesisWithPose':
        '41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc',
    'Point2D': 'eab0e83f44ab4de92ceaf76dd7d0e7638f2bdd1d16ffbe16c7a136c48e407247',
    'Pose2D': 'b0b5d1d7b4c20dd4fcde3ed1d4b289a919290572007d67a97043814db25d3648',
    'VisionClass': '1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a',
    'VisionInfo': '95d3116a17484ad91c9a2686e1d54890bbfc3ff6c6a2de137738c4950d45d284',
}
STANDIN = Path(__file__).resolve().parents[2] / 'tools' / 'vision_msgs_standin'


def vision_msgs_share() -> Path:
    """share/vision_msgs of the vision_msgs this environment imports."""
    import vision_msgs
    module_dir = Path(vision_msgs.__file__).resolve().parent
    # <prefix>/lib/python3.X/site-packages/vision_msgs -> <prefix>/share/vision_msgs
    candidates = [module_dir.parents[3] / 'share' / 'vision_msgs']
    candidates += [Path(p) / 'share' / 'vision_msgs'
                   for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    for candidate in candidates:
        if (candidate / 'msg').is_dir():
            return candidate
    pytest.fail(f'no share/vision_msgs/msg found for {module_dir} in {candidates}')


@pytest.mark.parametrize('name', sorted(UPSTREAM))
def test_type_hash_matches_upstream(name):
    data = json.loads((vision_msgs_share() / 'msg' / f'{name}.json').read_text())
    hashes = {h['type_name']: h['hash_string'] for h in data['type_hashes']}
    assert hashes[f'vision_msgs/msg/{name}'] == 'RIHS01_' + UPSTREAM[name]


def test_all_sixteen_messages_exist_in_standin_and_module():
    assert sorted(p.stem for p in (STANDIN / 'msg').glob('*.msg')) == sorted(UPSTREAM)
    import vision_msgs.msg
    for name in UPSTREAM:
        assert hasattr(vision_msgs.msg, name)


def test_standin_is_invisible_to_colcon_and_rosdep():
    # A ROS user's workspace must never build the stand-in over the distro's vision_msgs.
    for marker in ('COLCON_IGNORE', 'AMENT_IGNORE', 'CATKIN_IGNORE'):
        assert (STANDIN / marker).exists(), marker


def test_generated_module_is_importable_with_current_field_layout():
    from vision_msgs.msg import BoundingBox2D
    box = BoundingBox2D()
    box.center.position.x = 3.0  # 4.x layout (3.x had center.x)
    assert box.center.position.x == 3.0 and sys.modules['vision_msgs.msg'] is not None
