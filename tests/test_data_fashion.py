"""Fashion-MNIST from IDX files (tiny fixtures written here), input shaping, splits, loaders, errors, the registry."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from nncf_bootstrapnas.data import (
    FASHION_MNIST_CLASSES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataError,
    DataModule,
    DataNotFoundError,
    DigitsDataModule,
    FashionMNISTDataModule,
    build_data_module,
    find_fashion_mnist,
    read_idx,
    report_loader,
    write_idx,
)
from nncf_bootstrapnas.data.fashion_mnist import DEBIAN_DIR, IDX_FILES, load_fashion_mnist
from nncf_bootstrapnas.data.shaping import BatchShaper

N_TRAIN, N_TEST = 100, 30  # 10 training and 3 test images per class


def _images(n: int, offset: int) -> np.ndarray:
    """Constant images whose grey value identifies the image: value ``offset + i + 1`` (never 0, the crop padding)."""
    values = (offset + np.arange(n) + 1).astype(np.uint8)
    return np.broadcast_to(values[:, None, None], (n, 28, 28)).copy()


def _labels(n: int) -> np.ndarray:
    return (np.arange(n) % 10).astype(np.uint8)


def write_fashion(folder: Path, gz: bool | list[bool] = True) -> Path:
    """The four IDX files of a tiny Fashion-MNIST in ``folder`` (``gz`` per file: train/test images/labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": _images(N_TRAIN, 0),
        "train_labels": _labels(N_TRAIN),
        "test_images": _images(N_TEST, N_TRAIN),
        "test_labels": _labels(N_TEST),
    }
    flags = gz if isinstance(gz, list) else [gz] * 4
    for (key, array), compress in zip(arrays.items(), flags):
        write_idx(folder / (IDX_FILES[key] + (".gz" if compress else "")), array)
    return folder


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory) -> Path:
    return write_fashion(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="module")
def raw_dm(fashion_dir) -> FashionMNISTDataModule:
    """Native 28x28 grey, unnormalised: pixel values identify the images."""
    return FashionMNISTDataModule(fashion_dir, val_size=20, normalize=False, batch_size=16)


def _pool_ids(images: torch.Tensor) -> np.ndarray:
    """Pool index of constant images of the fixture (from the grey value of one pixel)."""
    values = np.rint(images[:, 0, 0, 0].numpy() * 255).astype(int)
    return values - 1


# --- IDX parsing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_idx_round_trip_raw_and_gzip(tmp_path, name):
    array = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    out = read_idx(path, ndim=3)
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, array)
    # compression is detected by content, not by the name
    renamed = write_idx(tmp_path / "plain-name", array, compress=True)
    np.testing.assert_array_equal(read_idx(renamed), array)


def test_idx_header_is_checked(tmp_path):
    labels = write_idx(tmp_path / "labels", np.arange(10, dtype=np.uint8))
    with pytest.raises(DataError, match="1 dimensions, expected 3"):
        read_idx(labels, ndim=3)
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 12)
    with pytest.raises(DataError, match=r"bad.*not an IDX file"):
        read_idx(bad_magic)
    unknown_type = tmp_path / "type"
    unknown_type.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(unknown_type)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_or_padded_idx_is_one_error_naming_the_file(tmp_path, gz):
    good = write_idx(tmp_path / "images", np.zeros((4, 28, 28), np.uint8), compress=False).read_bytes()
    for data in (good[:-7], good + b"\x00"):
        path = tmp_path / ("cut.gz" if gz else "cut")
        path.write_bytes(gzip.compress(data) if gz else data)
        with pytest.raises(DataError, match=rf"{path.name}.*truncated or corrupt"):
            read_idx(path)
    header = tmp_path / "header"
    header.write_bytes(good[:10])
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(header)


def test_corrupt_gzip_is_one_error_naming_the_file(tmp_path):
    compressed = gzip.compress(write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8)).read_bytes())
    for data in (compressed[: len(compressed) // 2], b"\x1f\x8b" + b"garbage" * 10):
        path = tmp_path / "broken.gz"
        path.write_bytes(data)
        with pytest.raises(DataError, match=r"broken\.gz: cannot read the IDX file"):
            read_idx(path)


# --- finding the files -------------------------------------------------------------------------------------------


def test_found_in_a_folder_a_torchvision_root_and_with_mixed_compression(tmp_path):
    direct = write_fashion(tmp_path / "direct", gz=[True, False, False, True])
    paths = find_fashion_mnist(direct)
    assert {p.parent for p in paths.values()} == {direct}
    assert paths["train_labels"].name == "train-labels-idx1-ubyte"
    assert paths["test_labels"].name == "t10k-labels-idx1-ubyte.gz"
    tv_root = tmp_path / "tv"
    write_fashion(tv_root / "FashionMNIST" / "raw")
    arrays = load_fashion_mnist(tv_root)
    assert arrays.folder == tv_root / "FashionMNIST" / "raw"
    assert arrays.train_images.shape == (N_TRAIN, 28, 28) and arrays.test_labels.shape == (N_TEST,)
    np.testing.assert_array_equal(arrays.train_labels, _labels(N_TRAIN))


def test_missing_data_set_lists_where_it_looked_and_the_install_command(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        FashionMNISTDataModule(tmp_path / "nowhere")
    message = str(err.value)
    for folder in (tmp_path / "nowhere", tmp_path / "nowhere" / "FashionMNIST" / "raw"):
        assert str(folder) in message
    assert "apt-get install dataset-fashion-mnist" in message and "FashionMNIST/raw" in message
    assert isinstance(err.value, FileNotFoundError)
    partial = write_fashion(tmp_path / "partial")
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        find_fashion_mnist(partial)


def test_inconsistent_files_are_rejected(tmp_path):
    folder = write_fashion(tmp_path / "f")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", _labels(N_TEST - 1))
    with pytest.raises(DataError, match=f"{N_TEST} images but .* {N_TEST - 1} labels"):
        load_fashion_mnist(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(N_TEST, 10, np.uint8))
    with pytest.raises(DataError, match="label 10 outside 0..9"):
        load_fashion_mnist(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", _labels(N_TEST))
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((N_TRAIN, 27, 27), np.uint8))
    with pytest.raises(DataError, match=r"train-images.*expected 28x28"):
        load_fashion_mnist(folder)


# --- splits ------------------------------------------------------------------------------------------------------


def test_splits_are_stratified_seeded_disjoint_and_keep_the_official_test_set(fashion_dir, raw_dm):
    labels = raw_dm.labels.numpy()
    train, val, test = (set(raw_dm.indices(s).tolist()) for s in ("train", "val", "test"))
    assert not train & val and not (train | val) & test
    assert train | val == set(range(N_TRAIN)) and test == set(range(N_TRAIN, N_TRAIN + N_TEST))
    assert np.bincount(labels[raw_dm.val_indices], minlength=10).tolist() == [2] * 10  # val_size 20: 2 per class
    again = FashionMNISTDataModule(fashion_dir, val_size=20, normalize=False)
    other = FashionMNISTDataModule(fashion_dir, val_size=20, normalize=False, seed=1)
    np.testing.assert_array_equal(again.val_indices, raw_dm.val_indices)
    assert not np.array_equal(other.val_indices, raw_dm.val_indices)
    assert raw_dm.class_names == FASHION_MNIST_CLASSES and raw_dm.num_classes == 10
    assert raw_dm.splits == ("train", "val", "test")


def test_val_size_zero_validates_on_the_test_set_and_says_so(fashion_dir):
    dm = FashionMNISTDataModule(fashion_dir, val_size=0)
    assert len(dm.train_indices) == N_TRAIN
    np.testing.assert_array_equal(dm.val_indices, dm.test_indices)
    assert "selection on the test set" in dm.describe()


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"val_size": N_TRAIN}, "val_size"),
        ({"val_size": 2}, "rounds to no image"),
        ({"image_size": 4}, "image_size"),
        ({"channels": 0}, "channels"),
        ({"normalize": "cifar"}, "normalize"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_are_one_clear_error(fashion_dir, bad, match):
    with pytest.raises(DataError, match=match):
        FashionMNISTDataModule(fashion_dir, **{"val_size": 20, **bad})


# --- loaders and shaping -----------------------------------------------------------------------------------------


def test_loaders_pair_each_image_with_its_label(raw_dm):
    for loader, split in (
        (raw_dm.train_loader(), "train"),
        (raw_dm.val_loader(), "val"),
        (raw_dm.test_loader(), "test"),
    ):
        batches = list(loader)  # one pass: the training loader reshuffles on every pass
        ids = _pool_ids(torch.cat([x for x, _ in batches]))
        labels = torch.cat([y for _, y in batches])
        assert sorted(ids.tolist()) == raw_dm.indices(split).tolist()
        assert labels.tolist() == (ids % 10).tolist()
    ordered = torch.cat([x for x, _ in raw_dm.val_loader()])
    assert _pool_ids(ordered).tolist() == raw_dm.val_indices.tolist()  # fixed order


def test_train_loader_is_seeded_and_reshuffles(raw_dm):
    first = [_pool_ids(x).tolist() for x, _ in raw_dm.train_loader()]
    assert first == [_pool_ids(x).tolist() for x, _ in raw_dm.train_loader()]
    loader = raw_dm.train_loader()
    assert [y.tolist() for _, y in loader] != [y.tolist() for _, y in loader]
    subset = torch.cat([y for _, y in raw_dm.train_loader(num_samples=30)])
    assert len(subset) == 30


@pytest.mark.parametrize("image_size, channels", [(28, 1), (32, 3), (64, 3), (16, 2)])
def test_grey_images_are_resized_and_repeated_to_the_model_input(fashion_dir, image_size, channels):
    dm = FashionMNISTDataModule(fashion_dir, image_size=image_size, channels=channels, val_size=20, normalize=False)
    images, labels = next(iter(dm.val_loader(batch_size=8)))
    assert images.shape == (8, channels, image_size, image_size) and images.dtype == torch.float32
    assert dm.input_shape == (channels, image_size, image_size) and dm.sample_size(4) == [4, *dm.input_shape]
    assert labels.dtype == torch.int64
    assert all(torch.equal(images[:, 0], images[:, c]) for c in range(channels))
    expected = torch.from_numpy(dm.val_indices[:8] + 1).float() / 255  # constant images stay constant
    torch.testing.assert_close(images.flatten(1), expected[:, None].expand(-1, images[0].numel()))


def test_normalisation_uses_training_statistics_or_imagenet(fashion_dir, raw_dm):
    dm = FashionMNISTDataModule(fashion_dir, val_size=20, channels=3)
    train_pixels = _images(N_TRAIN, 0)[raw_dm.train_indices] / 255.0
    assert dm.mean == pytest.approx((train_pixels.mean(),) * 3)
    assert dm.std == pytest.approx((train_pixels.std(ddof=1),) * 3)
    train = torch.cat([x for x, _ in dm.bn_loader()])
    assert abs(float(train.mean())) < 1e-5 and float(train.std()) == pytest.approx(1.0, abs=1e-3)
    imagenet = FashionMNISTDataModule(fashion_dir, val_size=20, channels=3, normalize="imagenet")
    assert imagenet.mean == IMAGENET_MEAN and imagenet.std == IMAGENET_STD
    x = next(iter(imagenet.val_loader(batch_size=4)))[0]
    raw = next(iter(raw_dm.val_loader(batch_size=4)))[0]
    for c in range(3):
        torch.testing.assert_close(x[:, c], (raw[:, 0] - IMAGENET_MEAN[c]) / IMAGENET_STD[c])


def test_augmentation_is_off_by_default_and_a_seeded_crop_and_flip(fashion_dir, raw_dm):
    plain = torch.cat([x for x, _ in raw_dm.train_loader(shuffle=False)])
    assert torch.equal(plain, torch.cat([x for x, _ in raw_dm.bn_loader()]))
    aug = FashionMNISTDataModule(fashion_dir, val_size=20, normalize=False, augment=True)
    first = [(x, y) for x, y in aug.train_loader()]
    again = [(x, y) for x, y in aug.train_loader()]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    augmented = torch.cat([x for x, _ in aug.train_loader(shuffle=False)])
    assert not torch.equal(augmented, plain)
    # constant images: a crop keeps the value or shows the zero padding, never anything else
    assert bool(((augmented == plain) | (augmented == 0)).all())
    assert torch.equal(torch.cat([x for x, _ in aug.bn_loader()]), plain)  # BN / eval loaders are never augmented


def test_random_crop_and_flip_is_a_shifted_window_of_the_padded_image():
    images = torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8)
    shaper = BatchShaper(16, 1, (0.0,), (1.0,), augment=True, generator=torch.Generator().manual_seed(3))
    out = shaper(images)
    padded = torch.nn.functional.pad(images.float() / 255, (2, 2, 2, 2))  # 16 // 8 = 2
    for x, p in zip(out, padded):
        windows = [p[:, dy : dy + 16, dx : dx + 16] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(x, w) or torch.equal(x, w.flip(-1)) for w in windows)


def test_calibration_subset_and_bn_loaders_are_fixed_and_from_their_split(raw_dm):
    calib = [x for x, _ in raw_dm.calibration_loader(12)]
    assert len(calib) == 12 and all(x.shape == (1, 1, 28, 28) for x in calib)
    ids = _pool_ids(torch.cat(calib))
    assert set(ids.tolist()) <= set(raw_dm.train_indices.tolist())
    assert ids.tolist() == _pool_ids(torch.cat([x for x, _ in raw_dm.calibration_loader(12)])).tolist()
    search = torch.cat([x for x, _ in raw_dm.subset_loader(10, "val", batch_size=4)])
    assert len(search) == 10 and set(_pool_ids(search).tolist()) <= set(raw_dm.val_indices.tolist())
    test_subset = torch.cat([x for x, _ in raw_dm.subset_loader(5, "test")])
    assert set(_pool_ids(test_subset).tolist()) <= set(raw_dm.test_indices.tolist())
    assert len(torch.cat([y for _, y in raw_dm.bn_loader(num_samples=7)])) == 7
    with pytest.raises(DataError, match=r"n must be in \[1, 20\]"):
        raw_dm.subset_loader(21, "val")
    with pytest.raises(DataError, match="split must be one of"):
        raw_dm.subset_loader(2, "holdout")
    assert _pool_ids(torch.cat([x for x, _ in report_loader(raw_dm)])).tolist() == raw_dm.test_indices.tolist()


def test_loaders_survive_the_training_and_search_rebuilds(raw_dm):
    """The trainer rebuilds loaders over a resumable sampler and the search cuts them with Subset: both must work."""
    from nncf_bootstrapnas.subnet_search.context import subset_loader
    from nncf_bootstrapnas.training.distributed import make_resumable

    resumable = make_resumable(raw_dm.train_loader(), seed=0)
    assert resumable is not None
    batches = list(resumable.epoch(0))
    assert sum(len(y) for _, y in batches) == len(raw_dm.train_indices) and batches[0][0].shape == (16, 1, 28, 28)
    cut = subset_loader(raw_dm.val_loader(), 5)
    images = torch.cat([x for x, _ in cut])
    assert _pool_ids(images).tolist() == raw_dm.val_indices[:5].tolist()
    x, y = raw_dm.val_loader().dataset[3]  # single items are shaped too
    assert x.shape == (1, 28, 28) and int(y) == raw_dm.val_indices[3] % 10


# --- registry and the common API ---------------------------------------------------------------------------------


def test_registry_builds_every_module_by_name(fashion_dir):
    fashion = build_data_module("Fashion-MNIST", root=fashion_dir, val_size=20, image_size=32, channels=3, seed=None)
    assert isinstance(fashion, FashionMNISTDataModule) and fashion.input_shape == (3, 32, 32) and fashion.seed == 0
    digits = build_data_module("digits", image_size=16, channels=1, normalize="none", augment=False, batch_size=8)
    assert isinstance(digits, DigitsDataModule) and digits.input_shape == (1, 16, 16) and digits.mean == 0.0
    for dm in (fashion, digits):
        assert isinstance(dm, DataModule)
        assert len(dm.class_names) == dm.num_classes == 10 and f"{len(dm.train_indices)} train" in dm.describe()


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("mnist", {}, "unknown data set 'mnist'; allowed: digits, fashion-mnist, imagefolder"),
        ("digits", {"root": "/data"}, "takes no root"),
        ("digits", {"augment": True}, "no augmentation"),
        ("digits", {"normalize": "imagenet"}, "imagenet"),
        ("digits", {"val_size": 10}, "does not take val_size; it takes: image_size"),
        ("imagefolder", {}, "needs root"),
        ("digits", {"image_size": 28}, "data set 'digits': image_size must be 8, 16 or 32"),
    ],
)
def test_registry_errors(name, kwargs, match):
    with pytest.raises(DataError, match=match):
        build_data_module(name, **kwargs)


def test_digits_offers_the_common_api(digits_module):
    assert digits_module.splits == ("train", "val") and digits_module.class_names[3] == "3"
    with pytest.raises(DataError, match="no test split"):
        digits_module.test_loader()
    bn = torch.cat([y for _, y in digits_module.bn_loader()])
    assert torch.equal(bn, digits_module.tensors("train")[1])
    assert len(torch.cat([y for _, y in digits_module.train_loader(num_samples=40)])) == 40
    assert torch.equal(torch.cat([y for _, y in report_loader(digits_module)]), digits_module.tensors("val")[1])
    assert "1438 train / 359 val" in digits_module.describe()


# --- the real data set (installed with `make data`) -----------------------------------------------------------------


@pytest.mark.skipif(
    not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").exists(), reason="dataset-fashion-mnist not installed"
)
def test_installed_fashion_mnist_is_complete_and_balanced():
    dm = FashionMNISTDataModule(image_size=32, channels=3)  # the default location
    labels = dm.labels.numpy()
    assert len(dm.train_indices) + len(dm.val_indices) == 60_000 and len(dm.test_indices) == 10_000
    assert np.bincount(labels[:60_000], minlength=10).tolist() == [6000] * 10
    assert np.bincount(labels[dm.test_indices], minlength=10).tolist() == [1000] * 10
    assert np.bincount(labels[dm.val_indices], minlength=10).tolist() == [500] * 10  # the default 5 000, stratified
    assert dm.mean[0] == pytest.approx(0.286, abs=1e-3) and dm.std[0] == pytest.approx(0.353, abs=1e-3)
    x, y = next(iter(dm.test_loader(batch_size=64)))
    assert x.shape == (64, 3, 32, 32) and y.shape == (64,)
