"""Text plugins: corpus datasets, cleaning steps, deduplication and tokenizers.

The module API other plugins reuse (see docs/text.md):
- `kplug_text.pipeline.clean_documents(texts, steps, ctx)`: cleaned texts, kept indices
  and the per-step report.
- `kplug_text.corpus.text_data(corpus, config, ctx)`: clean, split by document, train the
  tokenizer, encode; a `kplug.Data` for any objective.
- `kplug_text.tokenizer_files.train_tokenizer / save_tokenizer / load_tokenizer`.
"""
