"""Devices: logical CPU devices (mirrored training without GPUs) and device-name checks."""

from __future__ import annotations

import kplug


def split_cpu(count: int) -> None:
    """Make TensorFlow show `count` logical CPU devices.

    TensorFlow fixes its logical devices when it first uses a device, so this works only
    early in a process; later it succeeds only if the split is already the one asked for.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise kplug.RunError(
                f"logical_cpu_devices: {count} cannot be applied: TensorFlow already started "
                f"in this process with {have} CPU device(s). Run the recipe in a new process "
                "(`kplug run`), where the strategy is built before TensorFlow starts."
            ) from None


def check_devices(names: list[str]) -> list[str]:
    """Canonical names of `names` (`/gpu:1` -> `/device:GPU:1`); unknown ones are an error
    listing the devices this process has."""
    import tensorflow as tf

    available = {_key(d.name): d.name for d in tf.config.list_logical_devices()}
    out, missing = [], []
    for name in names:
        try:
            key = _key(name)
        except ValueError:
            key = None
        if key in available:
            out.append(available[key])
        else:
            missing.append(name)
    if missing:
        raise kplug.RunError(
            f"device(s) {', '.join(repr(m) for m in missing)} do not exist in this process; "
            f"it has {', '.join(sorted(available.values()))}. Use one of these names (for more "
            "CPU devices set the strategy's logical_cpu_devices)."
        )
    return out


def _key(name: str) -> tuple[str, int]:
    import tensorflow as tf

    spec = tf.DeviceSpec.from_string(name if "/" in name else f"/{name}")
    if spec.device_type is None:
        raise ValueError(name)
    return spec.device_type.upper(), spec.device_index or 0
