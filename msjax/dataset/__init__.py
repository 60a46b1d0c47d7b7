"""``msjax.dataset``: MindSpore's data pipeline on numpy (sources, batch/shuffle/map, transforms).

>>> from msjax import dataset as ds
>>> ds.write_digits("/tmp/digits")                    # real 8x8 digits as MNIST idx files
{'train': 1437, 'test': 360}
>>> mnist = ds.MnistDataset("/tmp/digits", usage="train").batch(32, drop_remainder=True)
>>> mnist.get_dataset_size()
44
"""
from msjax.dataset import config, ops, transforms, vision  # ops registers the pipeline operations
from msjax.dataset.datasets import Dataset
from msjax.dataset.iterators import DictIterator, TupleIterator
from msjax.dataset.digits import digits_as_mnist, write_digits
from msjax.dataset.mnist import MnistDataset, read_idx
from msjax.dataset.samplers import (DistributedSampler, RandomSampler, Sampler, SequentialSampler,
                                    SubsetRandomSampler, SubsetSampler)
from msjax.dataset.sources import GeneratorDataset, NumpySlicesDataset

__all__ = ["Dataset", "MnistDataset", "NumpySlicesDataset", "GeneratorDataset", "TupleIterator",
           "DictIterator", "Sampler", "SequentialSampler", "RandomSampler", "DistributedSampler",
           "SubsetSampler", "SubsetRandomSampler", "config", "vision", "transforms", "write_digits",
           "digits_as_mnist", "read_idx"]
