"""Keras training machinery: step checkpoints, resume, phases, callbacks, optimizers and
schedules, remat, initialization. Not plugin API: plugins use `kplug` (docs/api.md)."""
