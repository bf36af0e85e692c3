"""Text plugins: corpus datasets, cleaning steps, deduplication, tokenizers, web crawling."""
