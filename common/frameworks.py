"""Which frameworks are installed, and their versions.

Detected with importlib.metadata, never with importlib.util.find_spec: the
repository's own folders tensorflow/, keras/ and chainer/ would be "found" as
namespace packages whenever the repo root is on sys.path.
"""
import importlib.metadata as md
import os
import platform

# framework -> the distributions that provide it (first installed wins)
DISTRIBUTIONS = {
    "pytorch": ("torch",),
    "tensorflow": ("tensorflow-cpu", "tensorflow", "tensorflow-gpu"),
    "keras": ("keras",),
    "chainer": ("chainer",),
}
FRAMEWORKS = tuple(DISTRIBUTIONS)
# Keras 3 also needs a backend installed.
KERAS_BACKENDS = {"tensorflow": "tensorflow", "torch": "pytorch"}


def version(framework: str) -> str | None:
    """Installed version of a framework, or None."""
    for dist in DISTRIBUTIONS[framework]:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            continue
    return None


def installed(framework: str, keras_backend: str = "tensorflow") -> bool:
    """True when the framework (and, for Keras, the chosen backend) can be imported."""
    if version(framework) is None:
        return False
    if framework == "keras":
        return version(KERAS_BACKENDS[keras_backend]) is not None
    return True


def environment() -> dict:
    """Machine and versions, for reports and metrics.json."""
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": md.version("numpy"),
    }
    for fw in FRAMEWORKS:
        env[fw] = version(fw)
    return env
