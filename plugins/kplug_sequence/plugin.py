"""Registers the sequence architecture, the causal LM objective and `kplug generate`."""

from __future__ import annotations

import kplug
from kplug_sequence.causal_lm import CausalLM, CausalLMConfig
from kplug_sequence.generate import configure
from kplug_sequence.rnn import RNNConfig, build_rnn, estimate_rnn


@kplug.hookimpl
def register_architectures(register):
    register(
        "rnn",
        build_rnn,
        config=RNNConfig,
        summary="embedding, LSTM/GRU/SimpleRNN layers and a softmax over tokens or classes",
        estimate=estimate_rnn,
    )


@kplug.hookimpl
def register_objectives(register):
    register(
        "causal_lm",
        CausalLM,
        config=CausalLMConfig,
        summary="next-token prediction over windows of the token stream; bits per token",
    )


@kplug.hookimpl
def register_commands(register):
    register(
        "generate",
        configure,
        summary="sample text from a causal language model run: kplug generate RUN_DIR",
    )


@kplug.hookimpl
def prediction_rows(objective, config, model, inputs, run_dir, options):
    if objective != "causal_lm":
        return None
    from kplug_sequence.generate import generate_rows

    return generate_rows(model, config, inputs, run_dir, options)
