import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Prepared text datasets go to a cache of this test session, never the user's.
if "KPLUG_DATA_CACHE" not in os.environ:
    os.environ["KPLUG_DATA_CACHE"] = tempfile.mkdtemp(prefix="kplug-test-data-cache-")
    atexit.register(shutil.rmtree, os.environ["KPLUG_DATA_CACHE"], True)

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The example plugin's own tests run against its installation (test_example_plugin.py).
collect_ignore = ["example_plugin"]


@pytest.fixture
def write(tmp_path):
    """write("name.yaml", text) -> path, in a temporary folder."""

    def _write(name: str, text: str):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def runs_root(tmp_path):
    return tmp_path / "runs"


MINIMAL = """\
name: tiny
data: {name: synthetic, shape: [8, 8, 1], num_classes: 3, train_examples: 64,
       validation_examples: 16, test_examples: 16, batch_size: 16}
model: {name: cnn, filters: [4], dense_units: 8}
objective: {name: classification}
train: {epochs: 1}
"""


@pytest.fixture
def minimal_recipe(write):
    return write("tiny.yaml", MINIMAL)


# The resume tests' callback plugins: `throttle` sleeps before each training step, so that a
# test can stop the child at a known point (it changes no number; a batch-begin hook keeps
# Keras' asynchronous dispatch of batch-end hooks on JAX); `file_size_limit` fills the disk
# after a step. Installed through a real entry point by the `site` fixture.
THROTTLE = """
import time

import kplug


class ThrottleConfig(kplug.Config):
    seconds: float = 0.05


def make_throttle(config, ctx):
    import keras

    class Throttle(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            time.sleep(config.seconds)

    return Throttle()


class FileSizeLimitConfig(kplug.Config):
    after_step: int = 6
    bytes: int = 8000


def make_file_size_limit(config, ctx):
    import resource

    import keras

    class FileSizeLimit(keras.callbacks.Callback):
        # From `after_step` on, no file may grow past `bytes` (a disk that fills up: the
        # kernel refuses the write with EFBIG, as it refuses one with ENOSPC).

        step = 0

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if self.step == config.after_step:
                resource.setrlimit(resource.RLIMIT_FSIZE, (config.bytes, config.bytes))

    return FileSizeLimit()


@kplug.hookimpl
def register_callbacks(register):
    register("throttle", make_throttle, config=ThrottleConfig, summary="sleep before each step")
    register("file_size_limit", make_file_size_limit, config=FileSizeLimitConfig,
             summary="limit the size of files written after a step")
"""


@pytest.fixture
def site(tmp_path):
    """A folder for PYTHONPATH holding the callback plugin above, installed through a real
    entry point (`.dist-info`)."""
    root = tmp_path / "site"
    (root / "kplug_throttle").mkdir(parents=True)
    (root / "kplug_throttle" / "__init__.py").write_text(THROTTLE)
    info = root / "kplug_throttle-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kplug-throttle\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[kplug]\nthrottle = kplug_throttle\n")
    return root
