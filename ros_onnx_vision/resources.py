"""Locate the package's shared files (launch/, config/, models/) wherever it is installed."""

from __future__ import annotations

from pathlib import Path
import sys

PACKAGE = 'ros_onnx_vision'


def share_directory() -> Path:
    """share/ros_onnx_vision of a colcon install, else the source checkout (editable venv)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, KeyError, LookupError, OSError):
        pass  # no ament index in this environment (e.g. the development venv)
    source = Path(__file__).resolve().parent.parent
    if (source / 'package.xml').exists() and (source / 'config').is_dir():
        return source
    installed = Path(sys.prefix) / 'share' / PACKAGE
    if installed.is_dir():
        return installed
    raise FileNotFoundError(
        f'cannot find the {PACKAGE} share directory: not in the ament index (AMENT_PREFIX_PATH), '
        f'not a source checkout at {source}, not at {installed}')


def config_file(name: str) -> Path:
    """A file under config/, e.g. config_file('fastdds_shm.xml')."""
    return share_directory() / 'config' / name


def model_file(name: str) -> Path:
    """A file under models/, e.g. model_file('nanodet_m_416.yaml')."""
    return share_directory() / 'models' / name
