"""A user's image folder (tiny PIL fixtures written here): layouts, classes, splits, lazy decoding, shaping, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nncf_bootstrapnas.data import (
    IMAGENET_MEAN,
    DataError,
    DataModule,
    DataNotFoundError,
    ImageFolderDataModule,
    build_data_module,
)

CLASSES = ("cat", "dog", "eel")  # written out of order below: labels follow the sorted names


def _colour(label: int, i: int) -> tuple[int, int, int]:
    """A colour that identifies the image: red = class, green = image number."""
    return (40 * label + 20, 10 * i + 5, 200)


def write_class_folder(folder: Path, per_class: int = 5, size: tuple[int, int] = (40, 30)) -> Path:
    for label, name in reversed(list(enumerate(CLASSES))):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            ext = ".png" if i % 2 else ".bmp"
            Image.new("RGB", size, _colour(label, i)).save(folder / name / f"img{i}{ext}")
    return folder


def _ids(images: torch.Tensor) -> list[tuple[int, int]]:
    """``(label, image number)`` of unnormalised RGB fixture images, from their colour."""
    red = np.rint(images[:, 0, 0, 0].numpy() * 255).astype(int)
    green = np.rint(images[:, 1, 0, 0].numpy() * 255).astype(int)
    return list(zip(((red - 20) // 40).tolist(), ((green - 5) // 10).tolist()))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_class_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def raw_dm(folder) -> ImageFolderDataModule:
    return ImageFolderDataModule(folder, image_size=16, val_fraction=0.4, normalize=False, batch_size=4)


def test_classes_are_the_sorted_sub_folders_and_labels_follow_them(raw_dm):
    assert raw_dm.class_names == CLASSES and raw_dm.num_classes == 3
    assert raw_dm.splits == ("train", "val") and raw_dm.layout.startswith("one folder")
    batches = list(raw_dm.train_loader(shuffle=False, batch_size=100))
    images, labels = batches[0]
    assert [label for label, _ in _ids(images)] == labels.tolist()
    assert sorted(_ids(images)) == _ids(images)  # pool order: class, then file name


def test_one_folder_is_split_stratified_seeded_and_disjoint(folder, raw_dm):
    train, val = set(raw_dm.train_indices.tolist()), set(raw_dm.val_indices.tolist())
    assert not train & val and train | val == set(range(15))
    assert np.bincount(raw_dm.labels[raw_dm.val_indices].numpy()).tolist() == [2, 2, 2]  # round(5 * 0.4) per class
    again = ImageFolderDataModule(folder, image_size=16, val_fraction=0.4, normalize=False)
    other = ImageFolderDataModule(folder, image_size=16, val_fraction=0.4, normalize=False, seed=4)
    np.testing.assert_array_equal(again.val_indices, raw_dm.val_indices)
    assert not np.array_equal(other.val_indices, raw_dm.val_indices)
    val_images = torch.cat([x for x, _ in raw_dm.val_loader()])
    assert sorted(_ids(val_images)) == _ids(val_images) and len(val_images) == 6


def test_explicit_train_val_and_test_folders(tmp_path):
    write_class_folder(tmp_path / "train", per_class=4)
    write_class_folder(tmp_path / "val", per_class=2)
    dm = ImageFolderDataModule(tmp_path, image_size=16, normalize=False)
    assert dm.splits == ("train", "val") and (len(dm.train_indices), len(dm.val_indices)) == (12, 6)
    assert dm.layout == "train/ + val/ folders"
    assert all(str(dm.paths[i]).startswith(str(tmp_path / "val")) for i in dm.val_indices)
    write_class_folder(tmp_path / "test", per_class=1)
    with_test = ImageFolderDataModule(tmp_path, image_size=16, normalize=False)
    assert with_test.splits == ("train", "val", "test") and len(with_test.test_indices) == 3
    assert torch.cat([y for _, y in with_test.test_loader()]).tolist() == [0, 1, 2]
    (tmp_path / "val" / "eel").rename(tmp_path / "val" / "fox")
    with pytest.raises(DataError, match=r"val: classes .* differ from the training classes"):
        ImageFolderDataModule(tmp_path, image_size=16)


def test_train_folder_without_val_is_split(tmp_path):
    write_class_folder(tmp_path / "train", per_class=5)
    dm = ImageFolderDataModule(tmp_path, image_size=16, normalize=False, val_fraction=0.2)
    assert (len(dm.train_indices), len(dm.val_indices)) == (12, 3)
    assert "val split off by class" in dm.layout and "train/" in dm.describe()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("image_size", [16, 32])
def test_images_are_resized_cropped_and_converted(folder, channels, image_size):
    dm = ImageFolderDataModule(folder, image_size=image_size, channels=channels, normalize=False)
    images, labels = next(iter(dm.val_loader(batch_size=3)))
    assert images.shape == (3, channels, image_size, image_size) and images.dtype == torch.float32
    assert dm.input_shape == (channels, image_size, image_size) and labels.dtype == torch.int64
    first = dm.paths[dm.val_indices[0]]
    with Image.open(first) as img:
        expected = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32)[0, 0] / 255
    torch.testing.assert_close(images[0, :, 0, 0], torch.as_tensor(expected, dtype=torch.float32).reshape(-1))


def test_shorter_side_is_resized_then_centre_cropped(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    wide = Image.new("L", (60, 20), 0)
    wide.paste(255, (20, 0, 40, 20))  # a white square in the middle third
    wide.save(tmp_path / "a" / "wide.png")
    Image.new("L", (20, 20), 9).save(tmp_path / "b" / "x.png")
    Image.new("L", (20, 20), 9).save(tmp_path / "b" / "y.png")
    dm = ImageFolderDataModule(tmp_path, image_size=10, channels=1, normalize=False, val_fraction=0.5)
    image = dm._decode(0)
    assert image.shape == (1, 10, 10) and int(image[0, 1:-1, 1:-1].min()) == 255  # the middle third, kept


def test_decoding_is_lazy_with_an_optional_cache(folder, monkeypatch):
    calls: list[int] = []
    for cache, expected in ((False, 30), (True, 15)):
        dm = ImageFolderDataModule(folder, image_size=16, normalize=False, cache=cache)
        calls.clear()
        original = ImageFolderDataModule._decode
        monkeypatch.setattr(dm, "_decode", lambda i, dm=dm, original=original: calls.append(i) or original(dm, i))
        assert calls == []  # nothing decoded by building the loaders
        for _ in range(2):
            list(dm.train_loader())
            list(dm.val_loader())
        assert len(calls) == expected


def test_normalisation_statistics_come_from_training_images(folder, raw_dm):
    dm = ImageFolderDataModule(folder, image_size=16, val_fraction=0.4)
    train = torch.cat([x for x, _ in raw_dm.bn_loader()])
    expected_mean = train.mean(dim=(0, 2, 3))
    assert dm.mean == pytest.approx(expected_mean.tolist(), abs=1e-6)
    normalised = torch.cat([x for x, _ in dm.bn_loader()])
    torch.testing.assert_close(normalised.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    assert dm.std[2] == 1.0  # the blue channel is constant: not scaled, rather than divided by zero
    imagenet = ImageFolderDataModule(folder, image_size=16, normalize="imagenet")
    assert imagenet.mean == IMAGENET_MEAN


def test_loaders_augmentation_and_subsets(folder, raw_dm):
    aug = ImageFolderDataModule(folder, image_size=16, val_fraction=0.4, normalize=False, augment=True, cache=True)
    plain = torch.cat([x for x, _ in raw_dm.train_loader(shuffle=False)])
    augmented = torch.cat([x for x, _ in aug.train_loader(shuffle=False)])
    assert not torch.equal(plain, augmented) and bool(((augmented == plain) | (augmented == 0)).all())
    assert torch.equal(torch.cat([x for x, _ in aug.val_loader()]), torch.cat([x for x, _ in raw_dm.val_loader()]))
    calib = list(raw_dm.calibration_loader(4))
    assert len(calib) == 4 and set(_ids(torch.cat([x for x, _ in calib]))) <= set(_ids(plain))
    assert len(torch.cat([y for _, y in raw_dm.subset_loader(3, "val")])) == 3
    assert len(torch.cat([y for _, y in raw_dm.train_loader(num_samples=5)])) == 5
    with pytest.raises(DataError, match="split must be one of 'train', 'val'"):
        raw_dm.test_loader()


def test_hidden_files_are_skipped_and_nested_folders_read(tmp_path):
    write_class_folder(tmp_path, per_class=2)
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / ".cache").mkdir()
    (tmp_path / "README.txt").write_text("top-level files are not classes")
    (tmp_path / "dog" / "more").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "dog" / "more" / "z.jpg")
    dm = ImageFolderDataModule(tmp_path, image_size=8, val_fraction=0.5, normalize=False)
    assert dm.class_names == CLASSES and len(dm.paths) == 7


def test_folder_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        ImageFolderDataModule(tmp_path / "missing")
    (tmp_path / "only_files").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "only_files" / "a.png")
    with pytest.raises(DataError, match=r"no class folders; put the images of each class in its own sub-folder"):
        ImageFolderDataModule(tmp_path / "only_files")
    empty = write_class_folder(tmp_path / "empty", per_class=2)
    (empty / "fox").mkdir()
    with pytest.raises(DataError, match=r"class folder\(s\) without images: fox"):
        ImageFolderDataModule(empty)
    odd = write_class_folder(tmp_path / "odd", per_class=2)
    (odd / "dog" / "notes.txt").write_text("?")
    with pytest.raises(DataError, match=r"unknown extension: .*notes\.txt; allowed: \.jpg"):
        ImageFolderDataModule(odd)
    assert len(ImageFolderDataModule(odd, extensions=(".png", ".bmp", ".txt"), normalize=False).paths) == 7


def test_an_undecodable_image_is_one_error_naming_it(tmp_path):
    folder = write_class_folder(tmp_path, per_class=2)
    (folder / "eel" / "broken.png").write_bytes(b"\x89PNG not really")
    dm = ImageFolderDataModule(folder, image_size=8, normalize="none", val_fraction=0.5)
    with pytest.raises(DataError, match=r"broken\.png: cannot decode the image"):
        for loader in (dm.train_loader(), dm.val_loader()):
            list(loader)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"channels": 2}, "channels must be 1"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"image_size": 2000}, "image_size"),
    ],
)
def test_bad_arguments(folder, bad, match):
    with pytest.raises(DataError, match=match):
        ImageFolderDataModule(folder, **bad)


def test_registry_builds_an_image_folder(folder):
    dm = build_data_module("imagefolder", root=folder, image_size=16, channels=1, val_size=None, cache=True)
    assert isinstance(dm, ImageFolderDataModule) and isinstance(dm, DataModule)
    assert dm.input_shape == (1, 16, 16) and dm.class_names == CLASSES and str(folder) in dm.describe()
    with pytest.raises(DataError, match="does not take val_size"):
        build_data_module("image_folder", root=folder, val_size=10)
