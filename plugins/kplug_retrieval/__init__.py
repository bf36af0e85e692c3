"""kplug_retrieval: retrieval-augmented language modelling (kNN-LM)."""
