"""`augment:` of the vision architectures: random flips, rotations, zooms and translations
as Keras preprocessing layers at the model's input. Keras runs them only in training
(`training=True` in `fit`); evaluation, prediction and exported models see the image as is.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

import kplug

Factor = Annotated[float, Field(ge=0.0, lt=1.0)]


class AugmentConfig(kplug.Config):
    """Random image augmentation, applied in training only."""

    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = Field(
        "none", description="random flips (not for digits: a flipped 2 is no 2)"
    )
    rotation: Factor = Field(0.0, description="random rotation up to this fraction of 2*pi")
    zoom: Factor = Field(0.0, description="random zoom in or out up to this fraction")
    translation: Factor = Field(0.0, description="random shift up to this fraction of the size")
    contrast: Factor = Field(0.0, description="random contrast change up to this factor")

    def layers(self) -> list[Any]:
        """The Keras preprocessing layers, in order (none when nothing is enabled)."""
        from keras import layers

        out = []
        if self.flip != "none":
            out.append(layers.RandomFlip(self.flip, name="augment_flip"))
        if self.rotation:
            out.append(layers.RandomRotation(self.rotation, name="augment_rotation"))
        if self.zoom:
            out.append(layers.RandomZoom(self.zoom, self.zoom, name="augment_zoom"))
        if self.translation:
            out.append(layers.RandomTranslation(self.translation, self.translation,
                                                name="augment_translation"))  # fmt: skip
        if self.contrast:
            out.append(layers.RandomContrast(self.contrast, name="augment_contrast"))
        return out


def augment(x: Any, config: AugmentConfig | None) -> Any:
    """`x` through the augmentation layers of `config` (unchanged when None)."""
    for layer in config.layers() if config is not None else []:
        x = layer(x)
    return x
