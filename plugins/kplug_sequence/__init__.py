"""Sequence plugins: the `rnn` architecture, the `causal_lm` objective and `kplug generate`."""
