"""`PassageIndex`: the passages of a corpus most similar to a question, for heads that read
retrieved text (open-book QA: `question_answering`'s `retrieve_passages`).

A passage's vector is its tf-idf vector (scikit-learn `TfidfVectorizer`, sublinear term
frequencies, fitted on the passages) reduced to `dimension` numbers by truncated SVD
(latent semantic analysis) and L2-normalized; the vectors go into a faiss inner-product
index (`IndexFlatIP`, exact), so a search is cosine similarity to the question's vector.
Tf-idf needs no trained model: the QA encoder is not trained when its windows are made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PassageIndex:
    """The passages' vectors in a faiss index.

    Args:
        passages: the corpus, one string per passage.
        dimension: SVD components kept (at most the number of passages, and of terms less 1).
        seed: seed of the randomized SVD.

    Example:
    ```python
    index = PassageIndex(paragraphs, dimension=256)
    top = index.search(["What does the with statement do?"], k=3)  # (1, 3) passage numbers
    ```
    """

    def __init__(self, passages: Sequence[str], dimension: int = 256, seed: int = 0):
        import faiss
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.passages = list(passages)
        self.vectorizer = TfidfVectorizer(sublinear_tf=True)
        tfidf = self.vectorizer.fit_transform(self.passages)
        # As many components as passages span the passages' space exactly (a small corpus
        # loses nothing); scikit-learn wants fewer than the terms.
        components = min(dimension, tfidf.shape[0], tfidf.shape[1] - 1)
        self.svd = TruncatedSVD(max(1, components), random_state=seed)
        vectors = self._normalized(self.svd.fit_transform(tfidf))
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def search(self, queries: Sequence[str], k: int) -> np.ndarray:
        """`(queries, k)` passage numbers, most similar first."""
        vectors = self._normalized(self.svd.transform(self.vectorizer.transform(list(queries))))
        _, found = self.index.search(vectors, min(k, len(self.passages)))
        return found

    @staticmethod
    def _normalized(vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
