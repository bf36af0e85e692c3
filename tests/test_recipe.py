"""The recipe loader: YAML, extends, overrides, validation with file:line. No TensorFlow."""

import pytest

from kplug import RecipeError, load_recipe
from kplug.recipe import apply_overrides, parse_override


def test_minimal_recipe_gets_defaults(minimal_recipe):
    recipe = load_recipe(minimal_recipe)
    assert recipe.name == "tiny"
    assert recipe.seed == 42
    assert recipe.strategy.name == "default"
    assert recipe.optimizer.name == "adam"
    assert recipe.data.options.batch_size == 16
    assert recipe.model.config.kernel_size == 3  # a component default
    resolved = recipe.resolved()
    assert resolved["model"]["filters"] == [4]
    assert resolved["train"]["epochs"] == 1


def test_float_exponent_without_dot_is_a_float(write, minimal_recipe):
    recipe = load_recipe(minimal_recipe, ["optimizer.learning_rate=3e-4"])
    assert recipe.optimizer.learning_rate == pytest.approx(3e-4)
    path = write("lr.yaml", minimal_recipe.read_text() + "optimizer: {learning_rate: 1e-3}\n")
    assert load_recipe(path).optimizer.learning_rate == pytest.approx(1e-3)


def test_overrides_are_yaml_typed_and_delete(minimal_recipe):
    recipe = load_recipe(
        minimal_recipe,
        ["train.epochs=3", "model.filters=[2, 4]", "data.limit=null", "~model.dense_units"],
    )
    assert recipe.train.epochs == 3
    assert recipe.model.config.filters == [2, 4]
    assert recipe.model.config.dense_units == 64  # deleted, back to the default


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a.b=1", ("set", ("a", "b"), 1)),
        ("a.0.c=x", ("set", ("a", 0, "c"), "x")),
        ("a=[1, 2]", ("set", ("a",), [1, 2])),
        ("a=", ("set", ("a",), "")),
        ("a=b=c", ("set", ("a",), "b=c")),
        ("~a.b", ("delete", ("a", "b"), None)),
    ],
)
def test_override_grammar(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["noequals", "=1", "a..b=1", "~a=1", ".a=1"])
def test_bad_override_grammar(text):
    with pytest.raises(RecipeError):
        parse_override(text)


def test_overrides_index_lists():
    data = {"compression": [{"name": "prune", "final_sparsity": 0.5}]}
    apply_overrides(data, ["compression.0.final_sparsity=0.8", "compression.1.name=quantize"])
    assert data["compression"] == [
        {"name": "prune", "final_sparsity": 0.8},
        {"name": "quantize"},
    ]
    with pytest.raises(RecipeError, match="no index 5"):
        apply_overrides(data, ["compression.5.name=x"])
    with pytest.raises(RecipeError, match="nothing to delete"):
        apply_overrides(data, ["~compression.0.missing"])


def test_extends_precedence(write):
    write(
        "base.yaml",
        "name: base\nseed: 1\n"
        "data: {name: synthetic, shape: [8, 8, 1], num_classes: 3, batch_size: 8}\n"
        "model: {name: cnn, filters: [4], dense_units: 8}\n"
        "objective: {name: classification}\n"
        "train: {epochs: 5}\n",
    )
    child = write(
        "child.yaml", "extends: base.yaml\nname: child\ntrain: {epochs: 2}\nmodel: {filters: [6]}\n"
    )
    recipe = load_recipe(child, ["train.epochs=7"])
    assert recipe.name == "child"  # recipe over base
    assert recipe.seed == 1  # from base
    assert recipe.model.config.filters == [6]  # recipe over base, merged
    assert recipe.model.config.dense_units == 8  # base over component default
    assert recipe.train.epochs == 7  # command line over everything


def test_changing_the_component_replaces_the_section(write):
    write("base.yaml", "data: {name: synthetic, shape: [8, 8, 1], num_classes: 3}\n")
    child = write(
        "child.yaml",
        "extends: base.yaml\nname: c\ndata: {name: digits}\n"
        "model: {name: cnn, padding: same}\nobjective: {name: classification}\n",
    )
    recipe = load_recipe(child)
    assert recipe.data.name == "digits"  # synthetic's shape did not leak into digits


def test_every_error_is_reported_at_once_with_lines(write):
    path = write(
        "bad.yaml",
        "name: bad\n"
        "data: {name: mnist, batch_size: -1}\n"
        "model:\n  name: cnnn\n"
        "objective: {name: classification, label_smoothing: 2}\n"
        "train: {epochs: zero}\n",
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert len(info.value.problems) == 4, message
    assert "bad.yaml:2: data.batch_size" in message
    assert "bad.yaml:4: model.name: unknown architecture 'cnnn'; did you mean 'cnn'?" in message
    assert "bad.yaml:5: objective.label_smoothing" in message
    assert "bad.yaml:6: train.epochs" in message


def test_unknown_key_suggests(write, minimal_recipe):
    with pytest.raises(RecipeError, match=r"model.filterz: unknown key .*did you mean 'filters'"):
        load_recipe(minimal_recipe, ["model.filterz=[1]"])
    with pytest.raises(RecipeError, match=r"command line: traim.epochs=1"):
        load_recipe(minimal_recipe, ["traim.epochs=1"])


def test_duplicate_keys_are_errors(write):
    path = write("dup.yaml", "name: a\nname: b\n")
    with pytest.raises(RecipeError, match="dup.yaml:2: duplicate key 'name'"):
        load_recipe(path)


def test_python_tags_are_refused(write):
    path = write("evil.yaml", "name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(RecipeError, match="evil.yaml:1: invalid YAML.*not allowed"):
        load_recipe(path)


def test_run_name_cannot_traverse(write, minimal_recipe):
    for name in ["../x", "a/b", "..", ".hidden"]:
        with pytest.raises(RecipeError, match="not a valid run name"):
            load_recipe(minimal_recipe, [f"name={name}"])


def test_resolved_recipe_round_trips(write, minimal_recipe):
    recipe = load_recipe(minimal_recipe, ["train.epochs=4"])
    path = write("resolved.yaml", recipe.to_yaml())
    again = load_recipe(path)
    assert again.resolved() == recipe.resolved()


def test_with_overrides_revalidates(minimal_recipe):
    recipe = load_recipe(minimal_recipe)
    assert recipe.with_overrides(["train.epochs=9"]).train.epochs == 9
    with pytest.raises(RecipeError):
        recipe.with_overrides(["train.epochs=-1"])
