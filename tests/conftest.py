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
