"""Environment for processes that run nodes: fast image transport and test isolation.

Every entry point that starts nodes (the nodes' own main(), launch files, the demo, the tests)
applies the shipped Fast DDS profile unless the user already chose one, because the default
512 KiB shared-memory segment is smaller than one camera frame: frames then travel as fragmented
UDP on loopback, slowly, and best-effort samples are lost whole.
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


def node_environment(domain_id: int | None = None, *, localhost_only: bool = True,
                     base: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: shipped profile, optional own domain, host-only discovery.

    Tests pass their own `domain_id` so concurrent runs never see each other.
    """
    env = dict(os.environ if base is None else base)
    apply_fastdds_profile(env)
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    if localhost_only:
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.setdefault('PYTHONUNBUFFERED', '1')
    return env
