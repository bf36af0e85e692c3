"""`AxialAttention`: attention along the rows, then along the columns, of the sequence
laid out as a rows x columns grid (Ho et al., 2019, "Axial Attention in
Multidimensional Transformers")."""

from __future__ import annotations

import keras
from keras import ops

from kplug_transformers.self_attention import SelfAttention, masked_logits


@keras.saving.register_keras_serializable(package="kplug_transformers")
class AxialAttention(SelfAttention):
    """The sequence of `length = rows x columns` positions is read row by row into a grid.
    Each position first attends to the positions of its row; the result is then attended
    to along its column, so every position reaches every other in two steps. Scores are
    `rows x columns^2 + columns x rows^2` per head: `length^1.5` for a square grid,
    instead of `length^2`.

    With `rows: 1` (or `length` rows) one of the two steps is the identity and the other
    is full attention. Causal: a position sees the earlier positions of its row, then,
    along its column, the earlier rows, each of which only carries positions before it.

    Args:
        num_heads: attention heads.
        key_dim: width of each head.
        rows: rows of the grid; the length must be a multiple of it.
        causal: position i sees only positions j <= i.

    Example:
    ```python
    attention = AxialAttention(num_heads=4, key_dim=16, rows=64)
    y = attention(x)  # x: (batch, 4096, 64): a 64 x 64 grid
    ```
    """

    def __init__(self, num_heads: int, key_dim: int, rows: int, causal: bool = False,
                 **kwargs):  # fmt: skip
        super().__init__(num_heads, key_dim, causal=causal, **kwargs)
        self.rows = rows

    def attend(self, query, key, value, padding_mask):
        length = query.shape[1]
        if length % self.rows:
            raise ValueError(
                f"axial attention lays the sequence out as rows x columns: a length of "
                f"{length} is not a multiple of rows ({self.rows})"
            )
        columns = length // self.rows

        def grid(x):  # (batch, length, ...) -> (batch, rows, columns, ...)
            return ops.reshape(x, (-1, self.rows, columns, *x.shape[2:]))

        query, key, value, key_mask = (grid(x) for x in (query, key, value, padding_mask))
        # A step along an axis of one position is the identity.
        if columns > 1:  # along each row: (batch, rows, heads, columns, columns)
            allowed = key_mask[:, :, None, None, :] & self._order(columns)
            scores = ops.einsum("brcnh,brdnh->brncd", query, key)
            weights = ops.softmax(masked_logits(scores, allowed, self.key_dim), axis=-1)
            value = ops.einsum("brncd,brdnh->brcnh", ops.cast(weights, value.dtype), value)
        if self.rows > 1:  # along each column: (batch, columns, heads, rows, rows)
            column_mask = ops.transpose(key_mask, (0, 2, 1))
            allowed = column_mask[:, :, None, None, :] & self._order(self.rows)
            scores = ops.einsum("brcnh,bscnh->bcnrs", query, key)
            weights = ops.softmax(masked_logits(scores, allowed, self.key_dim), axis=-1)
            value = ops.einsum("bcnrs,bscnh->brcnh", ops.cast(weights, value.dtype), value)
        return ops.reshape(value, (-1, length, *value.shape[3:]))

    def _order(self, size: int):
        """Which of `size` positions along an axis each one sees: all, or the earlier."""
        if not self.causal:
            return ops.ones((size, size), dtype="bool")
        positions = ops.arange(size)
        return positions[None, :] <= positions[:, None]

    def get_config(self):
        return {**super().get_config(), "rows": self.rows}
