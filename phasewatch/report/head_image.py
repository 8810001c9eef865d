"""Per-head heatmaps as RGB arrays (no matplotlib): a [layers, heads] array through a fixed colour
table, each cell a square block of pixels, for ``SummaryWriter.add_image`` at every measurement.

The colour tables are matplotlib's ``viridis`` (scores, 0–1) and ``magma`` (attention entropy,
nats), sampled once into 256 entries below; a value maps to an entry as matplotlib maps a float
(``floor((v - vmin) / (vmax - vmin) * 256)``, clipped to 0 … 255), so a pixel has the colour the
matplotlib figure gave that value. Non-finite values are grey.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache

import numpy as np

#: Pixels per cell side (nearest-neighbour upscaling, so every head is a visible square).
CELL_PIXELS = 12
#: White pixels between two panels of :func:`image_row`.
GAP_PIXELS = 4
#: Colour of a non-finite value (RGB, 0–255).
NAN_RGB = (128, 128, 128)

# 256 RGB entries each, hex, sampled from matplotlib 3 (``colormaps[name].resampled(256)``).
_VIRIDIS = (
    "44015444025544035745055845065a45085b46095c460b5e460c5f460e61470f62471163471265471466471567471669"
    "47186a48196b481a6c481c6e481d6f481e70482071482172482273482374472575472676472777472878472a79472b7a"
    "472c7b462d7c462f7c46307d46317e45327f45347f453580453681443781443982433a83433b83433c84423d84423e85"
    "4240854141864142864043874044873f45873f47883e48883e49893d4a893d4b893d4c893c4d8a3c4e8a3b508a3b518a"
    "3a528b3a538b39548b39558b38568b38578c37588c37598c365a8c365b8c355c8c355d8c345e8d345f8d33608d33618d"
    "32628d32638d31648d31658d31668d30678d30688d2f698d2f6a8d2e6b8e2e6c8e2e6d8e2d6e8e2d6f8e2c708e2c718e"
    "2c728e2b738e2b748e2a758e2a768e2a778e29788e29798e287a8e287a8e287b8e277c8e277d8e277e8e267f8e26808e"
    "26818e25828e25838d24848d24858d24868d23878d23888d23898d22898d228a8d228b8d218c8d218d8c218e8c208f8c"
    "20908c20918c1f928c1f938b1f948b1f958b1f968b1e978a1e988a1e998a1e998a1e9a891e9b891e9c891e9d881e9e88"
    "1e9f881ea0871fa1871fa2861fa38620a48520a58521a68521a78422a78423a88323a98224aa8225ab8126ac8127ad80"
    "28ae7f29af7f2ab07e2bb17d2cb17d2eb27c2fb37b30b47a32b57a33b67935b77836b87738b97639b9763bba753dbb74"
    "3ebc7340bd7242be7144be7045bf6f47c06e49c16d4bc26c4dc26b4fc36951c46853c56755c66657c66559c7645bc862"
    "5ec96160c96062ca5f64cb5d67cc5c69cc5b6bcd596dce5870ce5672cf5574d05477d05279d1517cd24f7ed24e81d34c"
    "83d34b86d44988d5478bd5468dd64490d64392d74195d73f97d83e9ad83c9dd93a9fd938a2da37a5da35a7db33aadb32"
    "addc30afdc2eb2dd2cb5dd2bb7dd29bade27bdde26bfdf24c2df22c5df21c7e01fcae01ecde01dcfe11cd2e11bd4e11a"
    "d7e219dae218dce218dfe318e1e318e4e318e7e419e9e419ece41aeee51bf1e51cf3e51ef6e61ff8e621fae622fde724"
)

_MAGMA = (
    "00000300000400000601000701010901010b02020d02020f03031104031304041505041706051907051b08061d09071f"
    "0a07220b08240c09260d0a280e0a2a0f0b2c100c2f110c31120d33140d35150e38160e3a170f3c180f3f1a10411b1044"
    "1c10461e10491f114b20114d2211502311522511552611572811592a115c2b115e2d10602f1062301065321067341068"
    "350f6a370f6c390f6e3b0f6f3c0f713e0f72400f73420f74430f75450f76470f774810784a10794b10794d117a4f117b"
    "50127b52127c53137c55137d57147d58157e5a157e5b167e5d177e5e177f60187f61187f63197f651a80661a80681b80"
    "691c806b1c806c1d806e1e816f1e81711f81731f817420817621817721817922817a22817c23817e24817f2481812581"
    "8225818426818526818727818928818a28818c29808d29808f2a80912a80922b80942b80952c80972c7f992d7f9a2d7f"
    "9c2e7f9e2e7e9f2f7ea12f7ea3307ea4307da6317da7317da9327cab337cac337bae347bb0347bb1357ab3357ab53679"
    "b63679b83778b93778bb3877bd3977be3976c03a75c23a75c33b74c53c74c63c73c83d72ca3e72cb3e71cd3f70ce4070"
    "d0416fd1426ed3426dd4436dd6446cd7456bd9466ada4769dc4869dd4968de4a67e04b66e14c66e24d65e44e64e55063"
    "e65162e75262e85461ea5560eb5660ec585fed595fee5b5eee5d5def5e5df0605df1615cf2635cf3655cf3675bf4685b"
    "f56a5bf56c5bf66e5bf6705bf7715bf7735cf8755cf8775cf9795cf97b5df97d5dfa7f5efa805efa825ffb8460fb8660"
    "fb8861fb8a62fc8c63fc8e63fc9064fc9265fc9366fd9567fd9768fd9969fd9b6afd9d6bfd9f6cfda16efda26ffda470"
    "fea671fea873feaa74feac75feae76feaf78feb179feb37bfeb57cfeb77dfeb97ffebb80febc82febe83fec085fec286"
    "fec488fec689fec78bfec98dfecb8efdcd90fdcf92fdd193fdd295fdd497fdd698fdd89afdda9cfddc9dfddd9ffddfa1"
    "fde1a3fce3a5fce5a6fce6a8fce8aafceaacfcecaefceeb0fcf0b1fcf1b3fcf3b5fcf5b7fbf7b9fbf9bbfbfabdfbfcbf"
)
_TABLES = {"viridis": _VIRIDIS, "magma": _MAGMA}


@cache
def colormap(name: str) -> np.ndarray:
    """The [256, 3] uint8 colour table ``"viridis"`` or ``"magma"``."""
    if name not in _TABLES:
        raise ValueError(f"unknown colormap {name!r}; use one of {sorted(_TABLES)}")
    table = np.frombuffer(bytes.fromhex("".join(_TABLES[name])), dtype=np.uint8).reshape(256, 3)
    table.flags.writeable = False
    return table


def head_image(
    values,
    *,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    cell: int = CELL_PIXELS,
) -> np.ndarray:
    """A [layers, heads] array as an RGB image, uint8 [layers * cell, heads * cell, 3].

    Layer 0 is the top row, head 0 the left column. The value range is fixed (``vmin`` … ``vmax``,
    in the values' unit), not the array's own, so images of different steps compare; values
    outside it take the end colours.
    """
    array = np.asarray(_as_numpy(values), dtype=np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"a head heatmap needs a non-empty [layers, heads] array, got shape {array.shape}; "
            "pass one measure's per-head scores"
        )
    if not (math.isfinite(vmin) and math.isfinite(vmax) and vmax > vmin):
        raise ValueError(f"the value range needs finite vmin < vmax, got {vmin} … {vmax}")
    if int(cell) < 1:
        raise ValueError(f"cell must be >= 1 pixel, got {cell}")
    finite = np.isfinite(array)
    scaled = (np.where(finite, array, vmin) - vmin) / (vmax - vmin) * 256.0
    index = np.clip(np.floor(scaled), 0, 255).astype(np.intp)
    rgb = colormap(cmap)[index]
    rgb[~finite] = NAN_RGB
    return np.repeat(np.repeat(rgb, int(cell), axis=0), int(cell), axis=1)


def head_images(
    per_head: Mapping[str, object], *, entropy_max: float, cell: int = CELL_PIXELS
) -> dict[str, np.ndarray]:
    """One image per measure: scores on viridis 0–1, ``"entropy"`` on magma 0 … ``entropy_max``
    nats (e.g. ln of the probe's token count, the entropy of uniform attention over it)."""
    images = {}
    for name, values in per_head.items():
        if values is None:
            continue
        if name == "entropy":
            images[name] = head_image(values, vmin=0.0, vmax=entropy_max, cmap="magma", cell=cell)
        else:
            images[name] = head_image(values, cell=cell)
    return images


def image_row(images: Mapping[str, np.ndarray], gap: int = GAP_PIXELS) -> np.ndarray:
    """The images side by side, in the mapping's order, ``gap`` white pixels apart (uint8 HWC)."""
    panels = list(images.values())
    if not panels:
        raise ValueError("no image to put in a row: pass at least one measure")
    height = max(p.shape[0] for p in panels)
    parts = []
    for i, panel in enumerate(panels):
        if i:
            parts.append(np.full((height, gap, 3), 255, dtype=np.uint8))
        pad = np.full((height - panel.shape[0], panel.shape[1], 3), 255, dtype=np.uint8)
        parts.append(np.concatenate([panel, pad], axis=0))
    return np.concatenate(parts, axis=1)


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().float().numpy()
    return np.asarray(value)
