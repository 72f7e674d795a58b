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
# framework -> the prefix of its modules in its folder: <prefix>_layers (blocks the lessons
# share), _losses, _weights (to and from the neutral weights), _trainer (what the driver runs).
# The prefixes keep the names unique: the four folders share one sys.path.
PREFIX = {"pytorch": "torch", "tensorflow": "tf", "keras": "keras", "chainer": "chainer"}
ROLES = ("layers", "losses", "weights", "trainer")
ENGINES = {fw: f"{p}_trainer" for fw, p in PREFIX.items()}   # common/driver.py imports these
# The columns of every comparison: the frameworks, and Keras 3 on the torch backend.
COLUMNS = FRAMEWORKS + ("keras-torch",)
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


def cpu() -> dict:
    """The processor's model name and whether it has AVX-512 (Linux: /proc/cpuinfo).

    Timings and float32 rounding depend on it: TensorFlow turns its oneDNN kernels on by
    default only on some processors, and steps ran about 2x longer on an AVX2-only CPU.
    """
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model is None:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"processor": model or platform.processor() or platform.machine(),
            "avx512": "avx512f" in flags if flags else None,
            "avx2": "avx2" in flags if flags else None}


def describe_cpu(env: dict | None = None) -> str:
    """'Intel(R) Xeon(R) Processor, 2 cores, AVX-512' -- for every published timing."""
    env = env or environment()
    simd = {True: "AVX-512", False: "no AVX-512"}.get(env.get("avx512"), "AVX-512 unknown")
    return f"{env['processor']}, {env['cpu_count']} cores, {simd}"


def environment() -> dict:
    """Machine and versions, for reports and metrics.json."""
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        **cpu(),
        "cpu_count": os.cpu_count(),
        # TensorFlow's kernels: "0" off, "1" on, None = TensorFlow's default for this processor
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "numpy": md.version("numpy"),
    }
    for fw in FRAMEWORKS:
        env[fw] = version(fw)
    return env
