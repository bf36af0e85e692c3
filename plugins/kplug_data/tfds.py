"""`tfds`: any TensorFlow Datasets dataset by name, from a prepared `data_dir`.

Nothing is downloaded unless `download: true`: a dataset that is not prepared in
`data_dir` is an error saying how to prepare it. Images (uint8) become float32 in 0..1;
text features (`tf.string`) stay strings, the form kplug's text datasets give models that
bring their own preprocessing. The label must be a `ClassLabel`.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import Field

import kplug


class TfdsConfig(kplug.Config):
    dataset: str = Field(description="the TFDS name, optionally with a version: mnist, "
                         "imdb_reviews, cifar10:3.0.2")  # fmt: skip
    data_dir: str | None = Field(
        None, description="where the prepared dataset is; null: TFDS' default "
        "(~/tensorflow_datasets or $TFDS_DATA_DIR)"
    )  # fmt: skip
    train: str = Field("train", description="TFDS split (slices allowed: train[:80%])")
    validation: str | None = Field(None, description="TFDS split for validation; null: none")
    test: str | None = Field("test", description="TFDS split for testing; null: none")
    features: list[str] | None = Field(
        None, description="[input, label] feature names; null: the dataset's supervised keys"
    )
    normalize: bool = Field(True, description="images: scale pixels from 0..255 to 0..1")
    cache: bool = Field(True, description="keep the decoded examples in memory after epoch 1")
    download: bool = Field(
        False, description="download and prepare the dataset when it is missing (network)"
    )


def load_tfds(config: TfdsConfig, ctx: kplug.RunContext) -> kplug.Data:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = _builder(tfds, config)
    if not builder.is_prepared():
        if not config.download:
            raise kplug.DataError(
                f"data.dataset: TFDS {config.dataset!r} is not prepared in {builder.data_dir} "
                "and nothing is downloaded at run time. Prepare it once where the network is "
                f"reachable: `tfds build {config.dataset} --data_dir DIR` (or python -c "
                f"\"import tensorflow_datasets as tfds; tfds.builder('{config.dataset}', "
                "data_dir='DIR').download_and_prepare()\") and set data.data_dir: DIR, or set "
                "data.download: true."
            )
        builder.download_and_prepare()
    info = builder.info
    x_key, y_key = _feature_keys(info, config)
    x_feature, y_feature = info.features[x_key], info.features[y_key]
    if not isinstance(y_feature, tfds.features.ClassLabel):
        raise kplug.DataError(
            f"data.features: TFDS {config.dataset!r} label {y_key!r} is a "
            f"{type(y_feature).__name__}, not a ClassLabel; tfds serves classification data."
        )
    is_text = x_feature.dtype == tf.string
    is_image = x_feature.dtype == tf.uint8 and len(x_feature.shape) == 3

    def split(name: str | None) -> Any:
        if name is None:
            return None
        try:
            dataset = builder.as_dataset(split=name, shuffle_files=False)
        except (ValueError, KeyError) as error:
            raise kplug.DataError(
                f"data: TFDS {config.dataset!r} has no split {name!r} ({error}); its splits: "
                f"{', '.join(info.splits)}."
            ) from None

        def pick(example):
            x, y = example[x_key], tf.cast(example[y_key], tf.int32)
            if is_image and config.normalize:
                x = tf.cast(x, tf.float32) / 255.0
            elif not is_text:
                x = tf.cast(x, tf.float32)
            return x, y

        dataset = dataset.map(pick, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.cache() if config.cache else dataset

    spec = kplug.DataSpec(
        input_shape=() if is_text else tuple(x_feature.shape),
        num_classes=y_feature.num_classes,
        class_names=list(y_feature.names),
        input_dtype="string" if is_text else "float32",
    )
    if is_text:
        spec.extras["text_form"] = "strings"
    report = {
        "source": f"tfds {builder.info.full_name} in {builder.data_dir}",
        "features": [x_key, y_key],
        "splits": {s: int(info.splits[s].num_examples) for s in info.splits},
    }
    return kplug.Data(train=split(config.train), validation=split(config.validation),
                      test=split(config.test), spec=spec, report=report)  # fmt: skip


def _builder(tfds: Any, config: TfdsConfig) -> Any:
    try:
        return tfds.builder(config.dataset, data_dir=config.data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        base = config.dataset.split(":")[0]
        known = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(base, known, n=5, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise kplug.DataError(
            f"data.dataset: unknown TFDS dataset {config.dataset!r}; {hint}`tfds.list_builders()`"
            f" lists the {len(known)} known names (see tensorflow.org/datasets/catalog)."
        ) from None


def _feature_keys(info: Any, config: TfdsConfig) -> tuple[str, str]:
    keys = config.features or info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
        raise kplug.DataError(
            f"data.features: TFDS {config.dataset!r} has no (input, label) supervised keys; "
            f"name them: data.features: [INPUT, LABEL] (its features: "
            f"{', '.join(info.features)})."
        )
    for key in keys:
        if key not in info.features:
            raise kplug.DataError(
                f"data.features: TFDS {config.dataset!r} has no feature {key!r}; its features: "
                f"{', '.join(info.features)}."
            )
    return keys[0], keys[1]
