"""The CIFAR-10 comparison of `examples/cifar10_compare.py`: data, model, training, report."""
