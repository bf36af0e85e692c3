"""`BackbonePreprocess`: a `keras.applications` backbone's own input preprocessing as a
layer, so that a saved `.keras` model holds it (and loads with `safe_mode=True`)."""

from __future__ import annotations

import importlib

import keras


@keras.saving.register_keras_serializable(package="kplug_vision")
class BackbonePreprocess(keras.layers.Layer):
    """Scales images to 0..255 and applies `keras.applications.<module>.preprocess_input`
    of a backbone (VGG16: RGB to BGR and ImageNet mean subtraction; MobileNetV2: to -1..1;
    EfficientNet: nothing, its model rescales itself).

    Args:
        backbone: a `keras.applications` model name (`VGG16`, `ResNet50`, ...).
        input_scale: the value of a white pixel in the inputs (1.0 for images scaled to
            0..1, 255.0 for raw pixels).

    Example:
    ```python
    x = BackbonePreprocess("VGG16", input_scale=1.0)(images_in_0_1)
    ```
    """

    def __init__(self, backbone: str, input_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.input_scale = input_scale
        self._preprocess = preprocess_function(backbone)

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype) * (255.0 / self.input_scale)
        return self._preprocess(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"backbone": self.backbone, "input_scale": self.input_scale})
        return config


def preprocess_function(backbone: str):
    """`keras.applications.<module>.preprocess_input` of the module defining `backbone`."""
    module = getattr(keras.applications, backbone).__module__.rsplit(".", 1)[-1]
    return importlib.import_module(f"keras.applications.{module}").preprocess_input
