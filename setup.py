"""ament_python build of ros_onnx_vision (also installable with plain pip into a venv)."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'ros_onnx_vision'


def share(folder: str, pattern: str = '*') -> tuple[str, list[str]]:
    """Install the files of a top-level folder under share/<package>/<folder>."""
    files = [path for path in glob(os.path.join(folder, pattern)) if os.path.isfile(path)]
    return os.path.join('share', PACKAGE, folder), sorted(files)


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, PACKAGE + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        share('launch', '*.launch.py'),
        share('config'),
        share('models'),
        share('models/LICENSES'),
        share('models/reference'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='ros_onnx_vision maintainers',
    maintainer_email='maintainers@ros-onnx-vision.dev',
    description='ONNX-model computer vision for ROS 2: camera, inference and smoothing nodes.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'camera_node = ros_onnx_vision.ros.camera_node:main',
            'inference_node = ros_onnx_vision.ros.inference_node:main',
            'smoothing_node = ros_onnx_vision.ros.smoothing_node:main',
            'annotator_node = ros_onnx_vision.ros.annotator_node:main',
        ],
    },
)
