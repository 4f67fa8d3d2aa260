"""The digits data module: reproducible stratified split, shapes, normalisation, loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nncf_bootstrapnas.data import IGNORE_INDEX, DigitsDataModule, digits_loaders, stratified_split

N_DIGITS = 1797


@pytest.fixture(scope="module")
def dm8() -> DigitsDataModule:
    return DigitsDataModule(image_size=8, channels=1, normalize=False)


def test_split_is_reproducible_disjoint_and_complete(digits_module):
    again = DigitsDataModule(image_size=8, channels=1, seed=0)
    other = DigitsDataModule(image_size=8, channels=1, seed=1)
    np.testing.assert_array_equal(digits_module.train_indices, again.train_indices)
    np.testing.assert_array_equal(digits_module.val_indices, again.val_indices)
    assert not np.array_equal(digits_module.val_indices, other.val_indices)
    train, val = set(digits_module.train_indices.tolist()), set(digits_module.val_indices.tolist())
    assert not train & val
    assert train | val == set(range(N_DIGITS))


@pytest.mark.parametrize("val_fraction", [0.2, 0.35])
def test_split_is_stratified(val_fraction):
    labels = np.repeat(np.arange(10), np.arange(30, 130, 10))  # unbalanced classes
    train_idx, val_idx = stratified_split(labels, val_fraction, seed=3)
    for c in range(10):
        n_c = int((labels == c).sum())
        assert int((labels[val_idx] == c).sum()) == round(n_c * val_fraction)
        assert int((labels[train_idx] == c).sum()) == n_c - round(n_c * val_fraction)


def test_digits_split_class_proportions(digits_module):
    labels = digits_module.class_labels.numpy()
    overall = np.bincount(labels, minlength=10) / len(labels)
    val = np.bincount(labels[digits_module.val_indices], minlength=10) / len(digits_module.val_indices)
    assert np.abs(val - overall).max() < 0.01


@pytest.mark.parametrize("bad", [{"image_size": 28}, {"channels": 2}, {"val_fraction": 1.0}, {"layout": "nhwc"}])
def test_invalid_arguments_are_rejected(bad):
    with pytest.raises(ValueError):
        DigitsDataModule(**bad)


@pytest.mark.parametrize("image_size,channels", [(8, 1), (16, 3), (32, 1)])
def test_loader_shapes_and_dtypes(image_size, channels):
    dm = DigitsDataModule(image_size=image_size, channels=channels, batch_size=16)
    images, labels = next(iter(dm.train_loader()))
    assert images.shape == (16, channels, image_size, image_size)
    assert dm.input_shape == (channels, image_size, image_size)
    assert dm.sample_size(2) == [2, channels, image_size, image_size]
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert labels.shape == (16,) and 0 <= int(labels.min()) and int(labels.max()) < dm.num_classes == 10


def test_raw_pixels_are_scaled_to_unit_range(dm8):
    from sklearn.datasets import load_digits

    images, _ = dm8.tensors("val")
    expected = load_digits().images[dm8.val_indices] / 16.0
    np.testing.assert_allclose(images[:, 0].numpy(), expected, atol=1e-6)


def test_standardised_with_training_statistics(digits_module, dm8):
    train, _ = digits_module.tensors("train")
    val, _ = digits_module.tensors("val")
    assert abs(float(train.mean())) < 1e-4
    assert abs(float(train.std()) - 1.0) < 1e-3
    assert abs(float(val.mean())) < 0.1  # same distribution, but not the statistics' source
    # The statistics are those of the training split of the unnormalised images.
    raw = DigitsDataModule(image_size=32, channels=1, normalize=False)
    raw_train, _ = raw.tensors("train")
    assert digits_module.mean == pytest.approx(float(raw_train.mean()), rel=1e-5)
    assert digits_module.std == pytest.approx(float(raw_train.std()), rel=1e-5)
    assert dm8.mean == 0.0 and dm8.std == 1.0


def test_upsampling_preserves_the_image_and_channels_are_replicated(digits_module, dm8):
    images32, labels32 = digits_module.tensors("val")
    images8, labels8 = dm8.tensors("val")
    assert torch.equal(labels32, labels8)
    assert torch.equal(images32[:, 0], images32[:, 1]) and torch.equal(images32[:, 0], images32[:, 2])
    restored = F.adaptive_avg_pool2d(images32[:, :1] * digits_module.std + digits_module.mean, 8)
    corr = np.corrcoef(restored.flatten().numpy(), images8.flatten().numpy())[0, 1]
    assert corr > 0.95


def test_train_loader_is_seeded(digits_module):
    first = next(iter(digits_module.train_loader()))[1]
    assert torch.equal(first, next(iter(digits_module.train_loader()))[1])  # a new loader repeats the order
    loader = digits_module.train_loader()
    epoch1 = torch.cat([y for _, y in loader])
    epoch2 = torch.cat([y for _, y in loader])
    assert not torch.equal(epoch1, epoch2)  # but epochs differ
    assert torch.equal(epoch1.sort().values, epoch2.sort().values)
    other = DigitsDataModule(seed=5)
    assert not torch.equal(next(iter(other.train_loader()))[1], first)
    ordered = torch.cat([y for _, y in digits_module.train_loader(shuffle=False)])
    assert torch.equal(ordered, digits_module.tensors("train")[1])


def test_val_loader_covers_the_split_in_order(digits_module):
    batches = list(digits_module.val_loader(batch_size=100))
    images = torch.cat([x for x, _ in batches])
    labels = torch.cat([y for _, y in batches])
    expected_images, expected_labels = digits_module.tensors("val")
    assert [len(y) for _, y in batches] == [100, 100, 100, len(digits_module.val_indices) - 300]
    assert torch.equal(images, expected_images) and torch.equal(labels, expected_labels)


def test_calibration_and_subset_loaders(digits_module):
    calib = list(digits_module.calibration_loader(20))
    assert len(calib) == 20 and all(x.shape == (1, 3, 32, 32) for x, _ in calib)
    calib_images = torch.cat([x for x, _ in calib])
    assert torch.equal(calib_images, torch.cat([x for x, _ in digits_module.calibration_loader(20)]))
    train_images = digits_module.images[torch.from_numpy(digits_module.train_indices)]
    # every calibration image is a training image (no validation leakage)
    assert all(bool((train_images == img).flatten(1).all(1).any()) for img in calib_images[:5])

    subset = digits_module.subset_loader(50, split="val", batch_size=16)
    labels = torch.cat([y for _, y in subset])
    assert len(labels) == 50 and len(subset) == 4
    assert len(torch.cat([y for _, y in digits_module.subset_loader(70, split="train")])) == 70
    with pytest.raises(ValueError):
        digits_module.subset_loader(len(digits_module.val_indices) + 1, split="val")
    with pytest.raises(ValueError):
        digits_module.subset_loader(10, split="test")


def test_sequence_layout_is_the_raster_scan():
    image = DigitsDataModule(image_size=8, channels=1, seed=0)
    seq = DigitsDataModule(image_size=8, channels=1, seed=0, layout="sequence")
    x_img, y_img = image.tensors("train")
    x_seq, y_seq = seq.tensors("train")
    assert seq.input_shape == (1, 64)
    assert torch.equal(x_seq, x_img.reshape(len(x_img), 1, 64)) and torch.equal(y_seq, y_img)


def test_segmentation_targets_label_stroke_pixels():
    dm = DigitsDataModule(image_size=32, channels=3, target="segmentation", normalize=False)
    images, masks = dm.tensors("val")
    labels = dm.class_labels[torch.from_numpy(dm.val_indices)]
    assert masks.shape == (len(images), 32, 32) and masks.dtype == torch.int64
    stroke = images[:, 0] > 0.5
    assert torch.equal(masks != IGNORE_INDEX, stroke)
    assert bool(stroke.flatten(1).any(1).all())  # every digit has stroke pixels
    assert torch.equal(masks, torch.where(stroke, labels[:, None, None], IGNORE_INDEX))


def test_digits_loaders_convenience():
    train, val = digits_loaders(image_size=16, channels=1, batch_size=128, seed=2)
    assert sum(len(y) for _, y in train) + sum(len(y) for _, y in val) == N_DIGITS
    assert next(iter(val))[0].shape == (128, 1, 16, 16)
