"""The shipped Fast DDS profile, selected by every entry point that starts nodes.

The nodes' own main(), the launch files, the demo and the tests apply it unless the user chose a
profile already: the default 512 KiB shared-memory segment is smaller than one camera frame, so
frames would travel as fragmented UDP on loopback, slowly, and best-effort samples would be lost
whole.
"""

from __future__ import annotations

from collections.abc import MutableMapping
import os

from ros_onnx_vision.resources import config_file

PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'  # read by Fast DDS 3 (Kilted and later)
LEGACY_PROFILE_VARIABLE = 'FASTRTPS_DEFAULT_PROFILES_FILE'  # read by Fast DDS 2 (Jazzy, Humble)
PROFILE_NAME = 'fastdds_shm.xml'


def fastdds_profile() -> str:
    """Absolute path of the shipped Fast DDS profile."""
    return str(config_file(PROFILE_NAME))


def apply_fastdds_profile(env: MutableMapping[str, str] | None = None) -> str:
    """Select the shipped profile in `env` (default: this process) unless one is set already.

    A profile the user chose through either variable is kept and set in both, so it applies
    whichever Fast DDS major version the distro has. Returns the profile in effect. Call it
    before rclpy.init(): Fast DDS reads it once.
    """
    env = os.environ if env is None else env
    profile = env.get(PROFILE_VARIABLE) or env.get(LEGACY_PROFILE_VARIABLE) or fastdds_profile()
    for variable in (PROFILE_VARIABLE, LEGACY_PROFILE_VARIABLE):
        if not env.get(variable):
            env[variable] = profile
    return profile
