"""Compression: TF-MOT pruning, clustering and QAT through a Keras 3 <-> tf_keras bridge,
Keras 3 quantization, distillation, low-rank factorization; Keras, SavedModel and TFLite
exporters; a measured report (compression.json, compression.md) in the run directory."""
