"""Transformer plugins: keras-hub backbones, MLM / CLM / NSP / seq2seq objectives, fine-tuning."""
