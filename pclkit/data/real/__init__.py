"""Loaders for real face data: a folder of crops, CMU faces, RAF-DB, FER-2013,
LFW/CPLFW pair lists, FSA-Net pose ``.npz`` files and DISFA.

Every loader returns ``(image, labels)`` like SynthFaces (docs/architecture.md):
``image`` float32 ``(3, S, S)`` in [0, 1] RGB, ``labels`` a dict with ``index``;
``PairList`` alone returns ``(image_a, image_b, labels)`` because its items are
pairs. Images are centre-square-cropped then resized to ``size`` (default 64;
``None`` keeps the cropped square at native resolution), see
``pclkit.data.imageio``.

Everything is indexed and verified at construction time. Unusable input (corrupt,
truncated, empty or non-image files, wrong sizes, malformed or out-of-range
label lines, label lines without an image) is skipped, listed in
``dataset.skipped`` as ``(source, reason)`` and announced by one
``SkippedItemsWarning``. A missing root or list file, an unknown split and a
dataset with no usable item raise an error naming the path instead. File
loaders take ``check="decode"`` (decode every file once: catches truncation) or
``check="header"`` (fast, for very large folders; a truncated file then raises
``ImageDecodeError`` naming it when read).

One module per format: ``folder`` (FaceFolder), ``cmu`` (CMUFaces),
``expressions`` (RAFDB, FER2013), ``pairs`` (PairList), ``pose`` (PoseNPZ),
``disfa`` (DISFA); ``_common`` holds the shared listing/line helpers. Every
public name is re-exported here, so ``from pclkit.data.real import X`` works.
"""

from pclkit.data.imageio import ImageDecodeError
from pclkit.data.itemlist import SkippedItemsWarning
from pclkit.data.real.cmu import CMU_EXPRESSIONS, CMU_EYES, CMU_POSES, CMU_SIZES, CMUFaces
from pclkit.data.real.disfa import DISFA, DISFA_AUS, DISFA_MAX_INTENSITY
from pclkit.data.real.expressions import (
    FER2013,
    FER_EXPRESSIONS,
    FER_SIDE,
    FER_USAGES,
    RAF_EXPRESSIONS,
    RAF_SPLITS,
    RAFDB,
)
from pclkit.data.real.folder import FaceFolder
from pclkit.data.real.pairs import CPLFW_FOLDS, PAIR_FORMATS, PairList
from pclkit.data.real.pose import PoseNPZ

__all__ = [
    "CMUFaces",
    "DISFA",
    "FER2013",
    "FaceFolder",
    "ImageDecodeError",
    "PairList",
    "PoseNPZ",
    "RAFDB",
    "SkippedItemsWarning",
    # constants of the formats (label orders, sizes, choices)
    "CMU_EXPRESSIONS",
    "CMU_EYES",
    "CMU_POSES",
    "CMU_SIZES",
    "CPLFW_FOLDS",
    "DISFA_AUS",
    "DISFA_MAX_INTENSITY",
    "FER_EXPRESSIONS",
    "FER_SIDE",
    "FER_USAGES",
    "PAIR_FORMATS",
    "RAF_EXPRESSIONS",
    "RAF_SPLITS",
]
