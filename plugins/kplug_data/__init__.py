"""Built-in datasets: embedded MNIST 5k and 8x8 digits, synthetic tensors, image folders
and TensorFlow Datasets."""
