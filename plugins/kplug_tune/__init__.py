"""Hyperparameter search on KerasTuner: `search:` in recipes, `kplug tune`, four tuners."""
