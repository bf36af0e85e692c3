"""The transfer recipes: pretrain on digits 0-4, fine-tune on 10% of 5-9 from that run
(smoke-run here because it needs the pretrained run), and scratch with the same network."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kplug import load_recipe
from kplug.runner import run
from kplug.training.models import load_model

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "transfer"


def test_finetune_recipe_starts_from_the_pretrained_run(tmp_path, monkeypatch):
    pretrained = run(load_recipe(RECIPES / "pretrain_digits_0_4.yaml"), runs_root=tmp_path / "runs",
                     smoke=True, argv=["test"])  # fmt: skip
    # The recipe's init_from is runs/transfer-pretrain-0-4: the newest completed run there.
    monkeypatch.chdir(tmp_path)
    finetuned = run(load_recipe(RECIPES / "finetune_digits_5_9.yaml"), runs_root=tmp_path / "ft",
                    smoke=True, argv=["test"])  # fmt: skip
    report = finetuned.directory.read_json("init_from.json")
    assert Path(report["source"]).resolve() == (pretrained.directory / "model.keras").resolve()
    assert report["loaded"] == ["conv1", "conv2", "conv3", "dense1"]
    assert report["skipped"] == {"logits": "excluded (model.init_exclude)"}
    first, second = finetuned.directory.read_json("phases.json")
    assert first["frozen_layers"] == ["conv1", "conv2", "conv3"] and second["frozen_layers"] == []
    assert [first["epochs"], second["epochs"]] == [[0, 1], [1, 2]]  # smoke: 1 epoch per phase
    before, after = (load_model(run.directory / "model.keras", compile=False).get_layer("conv1")
                     .get_weights()[0] for run in (pretrained, finetuned))  # fmt: skip
    assert not np.array_equal(before, after)  # phase 2 trained the whole network
    data = finetuned.directory.read_json("data_report.json")
    assert data["classes"]["label_map"] == {"5": 0, "6": 1, "7": 2, "8": 3, "9": 4}
    assert data["fraction"]["of_train"] == 0.1


def test_scratch_and_finetune_share_the_network_and_data():
    finetune = load_recipe(RECIPES / "finetune_digits_5_9.yaml").resolved()
    scratch = load_recipe(RECIPES / "scratch_digits_5_9.yaml").resolved()
    assert finetune["data"] == scratch["data"]
    transfer_keys = ("init_from", "init_exclude", "freeze")
    assert {k: v for k, v in finetune["model"].items() if k not in transfer_keys} == {
        k: v for k, v in scratch["model"].items() if k not in transfer_keys
    }
    assert finetune["train"]["epochs"] == scratch["train"]["epochs"]
