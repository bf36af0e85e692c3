"""Strategy selection, plans and bad input: fast, in this process (no training)."""

from __future__ import annotations

import json
import socket

import pytest
from kplug_distribute.cluster import parse_tf_config
from kplug_distribute.jax_strategies import layout_rules

import kplug
from kplug import testing
from kplug.cli import main
from kplug.training.plan import plan

RECIPE = """\
name: tiny
data: {name: synthetic, shape: [8, 8, 1], num_classes: 3, train_examples: 64,
       validation_examples: 16, test_examples: 16, batch_size: 16}
model: {name: cnn, filters: [4], dense_units: 8}
objective: {name: classification}
train: {epochs: 1}
"""


@pytest.fixture
def recipe_file(write):
    return write("tiny.yaml", RECIPE)


def _run(recipe_file, tmp_path, *overrides: str) -> int:
    return main(["run", str(recipe_file), *overrides, "--runs-dir", str(tmp_path / "runs")])


def _two_workers(index: int = 0, port: int = 12345) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:12346"]},
                       "task": {"type": "worker", "index": index}})  # fmt: skip


@pytest.mark.parametrize(
    ("tf_config", "fragment"),
    [
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}', "TF_CONFIG has no `task`"),
        ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG has no `cluster`"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
         "task index 3 is out of range"),
        ('{"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}',
         "is not a host:port address"),
    ],
)  # fmt: skip
def test_bad_tf_config_is_a_user_error(
    recipe_file, tmp_path, monkeypatch, capsys, tf_config, fragment
):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    assert _run(recipe_file, tmp_path, "strategy.name=multi_worker") == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "runs").exists(), "a refused run must not create its directory"


def test_port_in_use_is_a_user_error(recipe_file, tmp_path, monkeypatch, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("TF_CONFIG", _two_workers(port=port))
        assert _run(recipe_file, tmp_path, "strategy.name=multi_worker") == 2
        assert f"port {port} of worker 0 (127.0.0.1:{port}, from TF_CONFIG) is in use" in (
            capsys.readouterr().err
        )
        assert main(["launch", "--workers", "2", "--ports", f"{port},{port + 1}",
                     str(recipe_file), "strategy.name=multi_worker"]) == 2  # fmt: skip
        assert f"port {port} of worker 0" in capsys.readouterr().err


def test_launch_needs_a_multi_worker_recipe(recipe_file, capsys):
    assert main(["launch", "--workers", "2", str(recipe_file)]) == 2
    assert "strategy.name=multi_worker" in capsys.readouterr().err


def test_a_device_that_does_not_exist_is_a_user_error(recipe_file, tmp_path, capsys):
    code = _run(recipe_file, tmp_path, "strategy.name=one_device", "strategy.device=/gpu:7")
    assert code == 2
    err = capsys.readouterr().err
    assert "'/gpu:7' do not exist in this process" in err and "CPU:0" in err


def test_no_tpu_is_a_user_error_naming_what_was_tried(recipe_file, tmp_path, capsys):
    assert _run(recipe_file, tmp_path, "strategy.name=tpu") == 2
    err = capsys.readouterr().err
    assert "no TPU found: TPUClusterResolver(tpu=None" in err and "local TPU" in err


@pytest.mark.parametrize("strategy", ["jax_data_parallel", "jax_model_parallel"])
def test_jax_strategy_on_tensorflow_is_a_validation_error(recipe_file, capsys, strategy):
    assert main(["validate", str(recipe_file), f"strategy.name={strategy}"]) == 2
    assert "jax" in capsys.readouterr().err


def test_tf_strategy_on_jax_is_a_validation_error(recipe_file, capsys):
    assert main(["validate", str(recipe_file), "backend=jax", "strategy.name=mirrored"]) == 2
    assert "tensorflow" in capsys.readouterr().err


def test_unknown_mesh_axis_is_a_validation_error(recipe_file, capsys):
    code = main(["validate", str(recipe_file), "backend=jax", "strategy.name=jax_model_parallel",
                 "strategy.layouts={conv.*kernel: [null, null, null, modle]}"])  # fmt: skip
    assert code == 2
    assert "unknown mesh axes ['modle']" in capsys.readouterr().err


def test_plan_shows_the_per_replica_batch(monkeypatch):
    mirrored = testing.recipe(
        {**_tiny(), "strategy": {"name": "mirrored", "logical_cpu_devices": 2}}
    )
    facts = plan(mirrored)
    assert (facts["global_batch"], facts["replicas"], facts["per_replica_batch"]) == (16, 2, 8)
    monkeypatch.setenv("TF_CONFIG", _two_workers(index=1))
    facts = plan(testing.recipe({**_tiny(), "strategy": {"name": "multi_worker"}}))
    assert (facts["workers"], facts["replicas"], facts["per_replica_batch"]) == (2, 2, 8)
    assert facts["task"] == "worker 1" and facts["chief"] is False


def test_tf_config_chief_rules():
    workers = {"worker": ["a:1", "b:2"]}
    assert parse_tf_config(
        {"cluster": workers, "task": {"type": "worker", "index": 0}}, "t"
    ).is_chief
    assert not parse_tf_config(
        {"cluster": workers, "task": {"type": "worker", "index": 1}}, "t"
    ).is_chief
    with_chief = {"chief": ["c:3"], **workers}
    cluster = parse_tf_config({"cluster": with_chief, "task": {"type": "worker", "index": 0}}, "t")
    assert not cluster.is_chief and cluster.num_workers == 3


class LayoutPlugin:
    @kplug.hookimpl
    def layout_rules(self, architecture, config):
        if architecture != "cnn":
            return None
        return {"dense.*kernel": [None, "model"], "conv.*kernel": [None, None, None, "model"]}


def test_hook_layout_rules():
    strategy = {"name": "jax_model_parallel", "layouts": {"conv.*kernel": [None, None, "model",
                                                                          None]}}  # fmt: skip
    recipe = testing.recipe({**_tiny(), "backend": "jax", "strategy": strategy})
    assert layout_rules(recipe) == {"conv.*kernel": [None, None, "model", None]}
    with testing.registered(LayoutPlugin(), name="layouts-under-test"):
        rules = layout_rules(recipe)
    # The plugin's rule for this architecture, with the recipe's rule winning over it.
    assert rules == {"dense.*kernel": [None, "model"], "conv.*kernel": [None, None, "model", None]}


def _tiny() -> dict:
    import yaml

    data = yaml.safe_load(RECIPE)
    data.pop("name")
    return data


def test_linear_learning_rate_scaling_multiplies_by_the_replicas():
    from kplug.context import RunContext
    from kplug.plugins import registry
    from kplug.training.optimizers import make_optimizer

    class FourReplicas(kplug.Strategy):
        num_replicas = 4

    for scaling, expected in (("none", 0.01), ("linear", 0.04)):
        optimizer = {"learning_rate": 0.01, "scale_learning_rate": scaling}
        ctx = RunContext(testing.recipe({**_tiny(), "optimizer": optimizer}), registry())
        ctx.strategy = FourReplicas()
        assert float(make_optimizer(ctx).learning_rate) == pytest.approx(expected)


def test_slurm_resolver_outside_slurm_is_a_user_error(recipe_file, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    code = _run(recipe_file, tmp_path, "strategy.name=multi_worker", "strategy.resolver=slurm")
    assert code == 2
    assert "not part of a SLURM job (no SLURM_JOB_ID)" in capsys.readouterr().err
