"""Data sets with one loader API: embedded digits (demo, fast tests), Fashion-MNIST and the user's image folders.

Pick one by name with :func:`build_data_module`; every module offers the :class:`DataModule` members (see
docs/data.md for the split policy and the input shaping).
"""

from nncf_bootstrapnas.data.base import DataModule, PooledDataModule, report_loader
from nncf_bootstrapnas.data.digits import IGNORE_INDEX, NUM_CLASSES, DigitsDataModule, digits_loaders
from nncf_bootstrapnas.data.errors import DataError, DataNotFoundError
from nncf_bootstrapnas.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FashionMNISTDataModule,
    find_fashion_mnist,
    load_fashion_mnist,
)
from nncf_bootstrapnas.data.idx import read_idx, write_idx
from nncf_bootstrapnas.data.image_folder import IMG_EXTENSIONS, ImageFolderDataModule
from nncf_bootstrapnas.data.registry import DATASET_NAMES, build_data_module, dataset_name
from nncf_bootstrapnas.data.shaping import IMAGENET_MEAN, IMAGENET_STD
from nncf_bootstrapnas.data.splits import stratified_split

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_CLASSES",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMG_EXTENSIONS",
    "NUM_CLASSES",
    "DataError",
    "DataModule",
    "DataNotFoundError",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageFolderDataModule",
    "PooledDataModule",
    "build_data_module",
    "dataset_name",
    "digits_loaders",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "read_idx",
    "report_loader",
    "stratified_split",
    "write_idx",
]
