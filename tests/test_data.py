import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from nasengine.data import (
    Dataset,
    augment,
    batches,
    cutout,
    dataset_shape,
    digits_split,
    fetch,
    load_dataset,
    prepare_dataset,
    random_crop,
    random_flip,
    unpack,
)
from nasengine.errors import NasError

# ------------------------------------------------------------------------------------------- digits


def test_digits_shapes_and_normalisation():
    d = load_dataset("digits")
    assert isinstance(d, Dataset)
    assert (d.name, d.num_classes, d.in_channels, d.image_size) == ("digits", 10, 1, 8)
    assert d.input_shape == (1, 8, 8)
    sizes = d.sizes()
    assert sum(sizes.values()) == 1797
    assert sizes["train"] == 1078 and sizes["val"] == 359 and sizes["test"] == 360
    for x, y in (d.split("train"), d.split("val"), d.split("test")):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and len(x) == len(y)
        assert set(y.tolist()) == set(range(10))  # stratified: every class in every split
    assert abs(d.train_x.mean().item()) < 1e-4
    assert abs(d.train_x.std().item() - 1) < 1e-3
    assert d.flip is False  # digits are not flip-invariant


def test_digits_split_is_fixed_and_disjoint():
    from sklearn.datasets import load_digits

    raw = load_digits()
    tr, va, te = digits_split(raw.target)
    assert len(set(tr) | set(va) | set(te)) == len(tr) + len(va) + len(te) == 1797  # disjoint, covering
    tr2, va2, te2 = digits_split(raw.target)
    assert (tr == tr2).all() and (va == va2).all() and (te == te2).all()
    # The dataset's tensors are exactly those rows, normalised with the training statistics.
    a, b = load_dataset("digits"), load_dataset("digits")
    for split, idx in (("train", tr), ("val", va), ("test", te)):
        x, y = a.split(split)
        assert torch.equal(x, b.split(split)[0]) and torch.equal(y, b.split(split)[1])
        np.testing.assert_array_equal(y.numpy(), raw.target[idx])
        pixels = x.double().squeeze(1).numpy() * a.std[0] + a.mean[0]
        np.testing.assert_allclose(pixels * 16, raw.images[idx], atol=1e-4)
    # Stratified: class proportions agree across splits to within a sample or two.
    for c in range(10):
        counts = [(raw.target[idx] == c).mean() for idx in (tr, va, te)]
        assert max(counts) - min(counts) < 0.01


def test_unknown_dataset_and_options():
    with pytest.raises(NasError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(NasError):
        load_dataset("digits", val_size=3)
    with pytest.raises(NasError):
        d = load_dataset("digits")
        d.split("holdout")


# -------------------------------------------------------------------------------------------- CIFAR


def _write_batch(path, images, labels, label_key):
    """One batch file in the real CIFAR format: a pickled dict of byte-string keys."""
    data = images.reshape(len(images), 3 * 32 * 32)  # row-major R, G, B planes of 32x32
    assert data.dtype == np.uint8
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing batch", label_key: list(map(int, labels)), b"data": data,
                     b"filenames": [b"img_%d.png" % i for i in range(len(labels))]}, f, protocol=2)


def _random_images(rng, n):
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _make_cifar10(root, per_batch=6, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_imgs, train_lbls = [], []
    for i in range(1, 6):
        imgs, lbls = _random_images(rng, per_batch), rng.integers(0, 10, per_batch)
        _write_batch(folder / f"data_batch_{i}", imgs, lbls, b"labels")
        train_imgs.append(imgs)
        train_lbls.append(lbls)
    test_imgs, test_lbls = _random_images(rng, n_test), rng.integers(0, 10, n_test)
    _write_batch(folder / "test_batch", test_imgs, test_lbls, b"labels")
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072}, f)
    return np.concatenate(train_imgs), np.concatenate(train_lbls), test_imgs, test_lbls


def _raw(d, x):
    """Undo the normalisation: back to uint8 pixel values."""
    mean = torch.tensor(d.mean).view(1, -1, 1, 1)
    std = torch.tensor(d.std).view(1, -1, 1, 1)
    return torch.round((x.double() * std + mean) * 255).to(torch.int64).numpy()


def test_cifar10_reader_round_trips_images_and_labels(tmp_path):
    train_imgs, train_lbls, test_imgs, test_lbls = _make_cifar10(tmp_path)
    d = load_dataset("cifar10", data_dir=tmp_path, val_size=7)
    assert (d.num_classes, d.in_channels, d.image_size) == (10, 3, 32)
    assert d.classes[0] == "airplane" and d.classes[-1] == "truck" and len(d.classes) == 10
    assert d.sizes() == {"train": 23, "val": 7, "test": 5}
    # Validation = the last val_size images of the official training set, in order.
    np.testing.assert_array_equal(_raw(d, d.train_x), train_imgs[:23])
    np.testing.assert_array_equal(_raw(d, d.val_x), train_imgs[23:])
    np.testing.assert_array_equal(_raw(d, d.test_x), test_imgs)
    np.testing.assert_array_equal(d.train_y.numpy(), train_lbls[:23])
    np.testing.assert_array_equal(d.val_y.numpy(), train_lbls[23:])
    np.testing.assert_array_equal(d.test_y.numpy(), test_lbls)
    assert d.train_y.dtype == torch.int64 and d.train_x.dtype == torch.float32
    # Normalised with the training split's per-channel statistics.
    assert torch.allclose(d.train_x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert d.flip is True and d.crop_padding == 4
    # data_dir may also be the batch folder itself.
    d2 = load_dataset("cifar10", data_dir=tmp_path / "cifar-10-batches-py", val_size=7)
    assert torch.equal(d2.test_x, d.test_x)


def test_cifar10_channel_layout(tmp_path):
    """A pixel's red, green and blue bytes sit at offsets p, 1024 + p, 2048 + p of its row."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    row = np.zeros((1, 3072), dtype=np.uint8)
    p = 5 * 32 + 7  # row 5, column 7
    row[0, p], row[0, 1024 + p], row[0, 2048 + p] = 200, 100, 50
    rows = np.repeat(row, 2, axis=0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rows, b"labels": [3, 4]}, f)
    d = load_dataset("cifar10", data_dir=tmp_path, val_size=2)
    img = _raw(d, d.test_x)[0]
    assert img[:, 5, 7].tolist() == [200, 100, 50]
    assert img.sum() == 350
    assert d.test_y.tolist() == [3, 4]
    assert d.classes == ()  # no batches.meta: no class names, still loads


def test_cifar100_reader_uses_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train_imgs, test_imgs = _random_images(rng, 12), _random_images(rng, 4)
    fine_tr, fine_te = rng.integers(0, 100, 12), rng.integers(0, 100, 4)
    for name, imgs, fine in (("train", train_imgs, fine_tr), ("test", test_imgs, fine_te)):
        with open(folder / name, "wb") as f:
            pickle.dump({b"filenames": [b"x"] * len(imgs), b"batch_label": b"b", b"fine_labels": list(map(int, fine)),
                         b"coarse_labels": [int(v) // 5 for v in fine], b"data": imgs.reshape(len(imgs), -1)}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [b"c%d" % i for i in range(100)],
                     b"coarse_label_names": [b"s%d" % i for i in range(20)]}, f)
    d = load_dataset("cifar100", data_dir=tmp_path, val_size=3)
    assert d.num_classes == 100 and len(d.classes) == 100 and d.classes[7] == "c7"
    np.testing.assert_array_equal(d.train_y.numpy(), fine_tr[:9])
    np.testing.assert_array_equal(d.val_y.numpy(), fine_tr[9:])
    np.testing.assert_array_equal(d.test_y.numpy(), fine_te)
    np.testing.assert_array_equal(_raw(d, d.val_x), train_imgs[9:])
    np.testing.assert_array_equal(_raw(d, d.test_x), test_imgs)


def test_cifar_missing_files_is_a_clear_error(tmp_path):
    with pytest.raises(NasError) as e:
        load_dataset("cifar10", data_dir=tmp_path)
    msg = str(e.value)
    assert "CIFAR-10 batch files not found in" in msg and str(tmp_path) in msg and "--download" in msg
    assert "\n" not in msg
    with pytest.raises(NasError, match="CIFAR-100 batch files not found"):
        load_dataset("cifar100", data_dir=tmp_path)


def test_cifar_corrupt_file_is_a_clear_error(tmp_path):
    _make_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(NasError, match="cannot read CIFAR batch file"):
        load_dataset("cifar10", data_dir=tmp_path, val_size=1)


def test_cifar_bad_val_size(tmp_path):
    _make_cifar10(tmp_path)
    with pytest.raises(NasError, match="val_size"):
        load_dataset("cifar10", data_dir=tmp_path, val_size=30)


def test_cifar_default_validation_size_is_5000(tmp_path):
    _make_cifar10(tmp_path, per_batch=1001, n_test=2)
    d = load_dataset("cifar10", data_dir=tmp_path)
    assert d.sizes() == {"train": 5, "val": 5000, "test": 2}


def test_cifar_is_downloaded_only_on_request(tmp_path):
    with pytest.raises(NasError, match="pass --download"):
        prepare_dataset("cifar10", data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing fetched, nothing written
    assert dataset_shape("cifar100") == {"num_classes": 100, "in_channels": 3, "image_size": 32}
    digits_shape = {"num_classes": 10, "in_channels": 1, "image_size": 8}
    assert prepare_dataset("digits") == dataset_shape("digits") == digits_shape


def test_fetch_shows_progress_and_checks_the_checksum(tmp_path):
    source = tmp_path / "archive.bin"
    source.write_bytes(np.random.default_rng(0).bytes(300_000))
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    shown = io.StringIO()
    fetch(source.as_uri(), tmp_path / "got.bin", md5, "TEST", shown)
    assert (tmp_path / "got.bin").read_bytes() == source.read_bytes()
    assert "downloading TEST: 300K/300K bytes" in shown.getvalue() and shown.getvalue().endswith("\n")
    with pytest.raises(NasError, match="wrong checksum"):
        fetch(source.as_uri(), tmp_path / "bad.bin", "0" * 32, "TEST", None)
    with pytest.raises(NasError, match="cannot download"):
        fetch((tmp_path / "missing.bin").as_uri(), tmp_path / "none.bin", md5, "TEST", None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.bin", "got.bin"]  # no partial files left


def test_an_unpacked_archive_loads(tmp_path):
    _, train_lbls, _, test_lbls = _make_cifar10(tmp_path / "made")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "made" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    shown = io.StringIO()
    unpack(archive, tmp_path / "data", "CIFAR-10", shown)
    assert "unpacking CIFAR-10: 8/8 files" in shown.getvalue()  # the folder and its 7 files
    d = load_dataset("cifar10", data_dir=tmp_path / "data", val_size=7)
    np.testing.assert_array_equal(d.test_y.numpy(), test_lbls)
    np.testing.assert_array_equal(d.val_y.numpy(), train_lbls[23:])


# ---------------------------------------------------------------------------------------- synthetic


def test_synthetic_any_shape_and_deterministic():
    d = load_dataset("synthetic", num_classes=5, in_channels=3, image_size=16, n_train=40, n_val=10, n_test=6)
    assert d.train_x.shape == (40, 3, 16, 16) and d.val_x.shape == (10, 3, 16, 16) and d.test_x.shape == (6, 3, 16, 16)
    assert d.num_classes == 5 and int(d.train_y.max()) < 5
    e = load_dataset("synthetic", num_classes=5, in_channels=3, image_size=16, n_train=40, n_val=10, n_test=6)
    assert torch.equal(d.train_x, e.train_x) and torch.equal(d.test_y, e.test_y)


# ------------------------------------------------------------------------------------- augmentation


def test_augment_keeps_shape_and_is_deterministic():
    x = torch.randn(32, 3, 16, 16)
    out1 = augment(x, crop_padding=4, flip=True, cutout_size=6, generator=torch.Generator().manual_seed(3))
    out2 = augment(x, crop_padding=4, flip=True, cutout_size=6, generator=torch.Generator().manual_seed(3))
    out3 = augment(x, crop_padding=4, flip=True, cutout_size=6, generator=torch.Generator().manual_seed(4))
    assert out1.shape == x.shape and out1.dtype == x.dtype
    assert torch.equal(out1, out2)
    assert not torch.equal(out1, out3)
    assert not torch.equal(out1, x)
    assert torch.equal(augment(x), x)  # nothing asked, nothing done


def test_random_crop_is_a_shifted_window():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(2):
        windows = [padded[b, :, i:i + 6, j:j + 6] for i in range(5) for j in range(5)]
        assert any(torch.equal(out[b], w) for w in windows)
    assert torch.equal(random_crop(x, 0, g), x)


def test_random_flip_flips_about_half():
    x = torch.arange(8, dtype=torch.float32).view(1, 1, 1, 8).repeat(400, 1, 1, 1)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 7).sum().item()
    same = (out[:, 0, 0, 0] == 0).sum().item()
    assert flipped + same == 400 and 150 < flipped < 250
    assert torch.equal(out[out[:, 0, 0, 0] == 7], x.flip(3)[: flipped])


def test_cutout_zeroes_a_square():
    x = torch.ones(50, 2, 12, 12)
    out = cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert bool((zeros > 0).all()) and bool((zeros <= 2 * 16).all())
    assert bool((zeros == 2 * 16).any())  # a hole fully inside the image
    assert torch.equal((out[:, 0] == 0), (out[:, 1] == 0))  # same hole in every channel


def test_batches_cover_the_split():
    x, y = torch.arange(10).float().view(10, 1, 1, 1), torch.arange(10)
    got = list(batches(x, y, 4))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    assert torch.equal(torch.cat([b[1] for b in got]), y)
    shuffled = list(batches(x, y, 4, shuffle=True, generator=torch.Generator().manual_seed(0), drop_last=True))
    assert [len(b[1]) for b in shuffled] == [4, 4]
    ys = torch.cat([b[1] for b in shuffled])
    assert len(set(ys.tolist())) == 8
    assert torch.equal(ys, torch.cat([b[0].view(-1) for b in shuffled]).long())  # x and y stay paired


def test_dataset_to_device_cpu_is_identity():
    d = load_dataset("synthetic", n_train=8, n_val=4, n_test=4, image_size=8)
    assert d.to("cpu") is d


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augment_on_cuda():
    d = load_dataset("synthetic", n_train=64, n_val=8, n_test=8, image_size=16).to("cuda")
    assert d.train_x.is_cuda and d.test_y.is_cuda
    g = torch.Generator(device="cuda").manual_seed(0)
    out = augment(d.train_x, 2, True, 4, g)
    assert out.is_cuda and out.shape == d.train_x.shape
    out2 = augment(d.train_x, 2, True, 4, torch.Generator(device="cuda").manual_seed(0))
    assert torch.equal(out, out2)
    # A CPU generator drives a CUDA batch too.
    out3 = augment(d.train_x, 2, True, 4, torch.Generator().manual_seed(0))
    assert out3.is_cuda


def test_download_fetches_cifar_for_a_search_only_when_asked(tmp_path, monkeypatch, capsys):
    """``--download`` reaches the dataset: the CIFAR archive is fetched (from a local archive in the real
    format, standing in for the official URL) and unpacked into ``--data-dir`` before anything trains."""
    from nasengine.cli.main import build_parser, main
    from nasengine.cli.search import config_from_args
    from nasengine.data import cifar
    from nasengine.engine import prepare

    _make_cifar10(tmp_path / "made")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "made" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setitem(cifar.CIFAR["cifar10"], "url", archive.as_uri())
    monkeypatch.setitem(cifar.CIFAR["cifar10"], "md5", hashlib.md5(archive.read_bytes()).hexdigest())
    flags = ["search", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"),
             "--storage", f"sqlite:///{tmp_path / 'c.db'}"]

    assert main(flags) == 2 and "pass --download" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "c.db").exists()
    cfg = config_from_args(build_parser().parse_args(flags + ["--download"]))
    assert cfg.download
    prepare(cfg)
    assert (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert "unpacking CIFAR-10: 8/8 files" in capsys.readouterr().err
