"""Data machinery the core shares with dataset plugins: operations on splits (NumPy arrays
or `tf.data` datasets) and the content-keyed cache of prepared datasets."""
