"""Fuzzing the recipe loader and the override parser with hypothesis: whatever the text,
only kplug's own errors (`KplugError` subclasses) may escape, and a recipe that loads can
be written out, loaded again and planned. 2,100 examples in all; no TensorFlow import."""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from kplug import KplugError, load_recipe
from kplug.plugins import registry
from kplug.recipe import TOP_LEVEL, Recipe, parse_override, yamlio
from kplug.training.options import RUN_NAME_PATTERN
from kplug.training.plan import plan

pytestmark = pytest.mark.xdist_group("bad_inputs")

BASE = """\
name: fuzz
data: {name: synthetic, shape: [4, 4, 1], num_classes: 3, train_examples: 16,
       validation_examples: 4, test_examples: 4, batch_size: 4}
model: {name: cnn, filters: [2], dense_units: 4}
objective: {name: classification}
train: {epochs: 1}
optimizer: {learning_rate: 0.001}
description: a recipe to mutate
"""
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The names and keys a recipe uses, so that examples get past the first checks.
NAMES = sorted({c.name for c in registry().all()})
KEYS = sorted(
    {*TOP_LEVEL, "tuner", "space", "limit", "batch_size", "validation_split", "shape",
     "num_classes", "filters", "dense_units", "epochs", "learning_rate", "schedule", "path",
     "tokenizer", "clean", "init_from", "teacher", "final_sparsity", "mode"}
)  # fmt: skip
# Characters that mean something to YAML or to the override grammar, and some that break
# paths and encodings.
SPECIAL = ":{}[],&*!|>'\"%@`#-?~=. \t\n\r\x00\x85\u2028\ufeff\udcff"
# Tokens spliced into texts (a fuzzer's dictionary): YAML features that build objects,
# refer to themselves, nest deeply or carry bytes no file or path can take.
TOKENS = [
    "&a ", "*a", "&a [*a]", "!!int ", "!!float ", "!!binary ", "!!timestamp ", "!!set ",
    "!!python/name:os.system ", "!!python/object/apply:os.system ", "!custom ", "<<: *a",
    "[" * 1500, "{a: " * 400, '"\\0"', '"\\udcff"', "\udcff", "\x00", ".inf", ".nan",
    "99999999999999999999", "1e400", "-1", "0", "../../", "/", "\n", "---\n", "? ",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NAMES),
    st.text(max_size=12),
    st.text(alphabet=SPECIAL, max_size=6),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
        st.dictionaries(st.just("name"), st.sampled_from(NAMES)).flatmap(
            lambda named: st.dictionaries(keys, children, max_size=3).map(
                lambda rest: {**rest, **named}
            )
        ),
    ),
    max_leaves=12,
)
recipes = st.dictionaries(keys, values, max_size=6)


@st.composite
def mutated(draw, text_strategy):
    """Text with a few characters inserted, deleted or replaced."""
    text = draw(text_strategy)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(
            st.text(alphabet=SPECIAL, min_size=1, max_size=3)
            | st.text(max_size=3)
            | st.sampled_from(TOKENS)
        )
        if edit == "insert":
            text = text[:at] + piece + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + len(piece) :]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
    return text


def dumped(style: bool | None):
    return recipes.map(
        lambda data: yaml.safe_dump(data, default_flow_style=style, allow_unicode=True)
    )


yaml_texts = st.one_of(
    mutated(dumped(False)),
    mutated(dumped(None)),
    mutated(st.just(BASE)),
    st.text(alphabet=SPECIAL + "abcnme01", max_size=60),
)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def loads_or_refuses(path: Path, overrides=()) -> Recipe | None:
    """The recipe, or None when kplug refused it with its own error."""
    try:
        recipe = load_recipe(path, overrides)
    except KplugError as error:
        assert str(error), "an error must say what is wrong"
        event(f"refused: {type(error).__name__}")
        return None
    event("loaded")
    assert_safe_to_run(recipe)
    # What `kplug run` does first with a valid recipe: write it out, resolved.
    text = recipe.to_yaml()
    text.encode("utf-8")
    again = Recipe.from_dict(yaml.safe_load(text), source="resolved", registry=recipe.registry)
    assert again.resolved() == recipe.resolved()
    return recipe


def assert_safe_to_run(recipe: Recipe) -> None:
    """What a loaded recipe promises the runner: a run name that stays one folder below
    the runs directory, and values that every file and library can take."""
    assert re.fullmatch(RUN_NAME_PATTERN, recipe.name) and ".." not in recipe.name
    root = Path("/runs")
    assert (root / recipe.name).parent == root and not Path(recipe.name).is_absolute()

    def check(value):
        if isinstance(value, dict):
            for key, item in value.items():
                check(key)
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)
        elif isinstance(value, str):
            assert "\x00" not in value, value
            value.encode("utf-8")
        elif isinstance(value, float):
            assert math.isfinite(value), value
        elif isinstance(value, int) and not isinstance(value, bool):
            assert -(2**63) <= value < 2**63, value

    check(recipe.resolved())


def planned(recipe: Recipe) -> None:
    try:
        result = plan(recipe)
    except KplugError:
        return
    for key in ("steps_per_epoch", "parameters", "memory_estimate_mib"):
        value = result.get(key)
        assert value is None or (isinstance(value, int | float) and math.isfinite(value)), result


@settings(FUZZ, max_examples=700)
@given(text=yaml_texts)
@example(text="{!!int }\n")  # found by this test: IndexError inside PyYAML
@example(text="a: &a [*a]\n")
@example(text="a: " + "[" * 3000)
def test_recipe_text_loads_or_gives_a_kplug_error(text, folder):
    path = folder / "recipe.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    loads_or_refuses(path)


@settings(FUZZ, max_examples=300)
@given(
    data=st.binary(max_size=200)
    | mutated(st.just(BASE)).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_recipe_bytes_load_or_give_a_kplug_error(data, folder):
    path = folder / "recipe.bin.yaml"
    path.write_bytes(data)
    loads_or_refuses(path)


dotted_keys = st.lists(
    st.sampled_from(KEYS)
    | st.integers(0, 3).map(str)
    | st.text(alphabet=SPECIAL + "ab", max_size=3),
    min_size=0,
    max_size=4,
).map(".".join)


def flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


value_texts = st.one_of(
    scalars.map(flow),
    st.integers(-3, 40).map(str),
    values.map(flow),
    st.text(max_size=20),
    mutated(st.sampled_from(["[1, 2]", "{a: 1}", "1e-3", "null", "!!python/name:os.system"])),
)
# Keys the base recipe has (`data.batch_size`, `model.filters.0`): most of these overrides
# give a valid recipe, which is then written out, loaded again and planned.
BASE_KEYS = sorted(
    ".".join(map(str, path))
    for path in yamlio.parse(BASE, "base")[1]
    if (len(path) > 1 and path[-1] != "name") or path in (("name",), ("description",))
)
plausible_overrides = st.builds(
    lambda k, v: f"{k}={v}",
    st.sampled_from(BASE_KEYS),
    st.one_of(
        st.integers(-2, 64).map(str),
        st.integers(1, 64).map(str),
        st.floats(0, 1).map(repr),
        st.lists(st.integers(-1, 9), max_size=4).map(flow),
        value_texts,
    ),
)
overrides = st.one_of(
    plausible_overrides,
    st.builds(lambda k, v: f"{k}={v}", dotted_keys, value_texts),
    dotted_keys.map(lambda k: f"~{k}"),
    st.text(max_size=20),
)


@settings(FUZZ, max_examples=300)
@given(text=overrides)
def test_override_parser_parses_or_gives_a_kplug_error(text):
    try:
        op, path, _ = parse_override(text)
    except KplugError:
        return
    assert op in ("set", "delete") and path


@settings(FUZZ, max_examples=400)
@given(texts=st.lists(overrides, max_size=4))
@example(texts=["strategy=#"])  # found by this test: `strategy: null` passed, then KeyError
def test_overrides_on_a_recipe_load_or_give_a_kplug_error(texts, folder):
    path = folder / "base.yaml"
    path.write_text(BASE, encoding="utf-8")
    loads_or_refuses(path, texts)


@settings(FUZZ, max_examples=400)
@given(texts=st.lists(plausible_overrides, min_size=1, max_size=3))
@example(texts=["data.batch_size=9223372036854775808"])  # found: beyond int64, accepted
@example(texts=["description=\udcff"])
def test_plausible_overrides_load_and_plan_or_give_a_kplug_error(texts, folder):
    path = folder / "base.yaml"
    path.write_text(BASE, encoding="utf-8")
    recipe = loads_or_refuses(path, texts)
    if recipe is not None:
        planned(recipe)
