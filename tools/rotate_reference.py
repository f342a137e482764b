"""
torchvision's rotation on small images, the reference of tests/data_augment.test.ts: writes
tests/golden/torchvision_rotate.json with, per case, a seeded uint8 image and its rotations as a
float tensor: F.rotate(img, angle, interpolation=NEAREST, fill=0) (grid_sample mode="nearest",
align_corners=False: the source coordinate rounded half to even, 0 outside), and
F.rotate(img, angle, interpolation=BILINEAR) with fill=None, plain grid_sample with zero padding
(with fill=0 torchvision also multiplies each border pixel by its bilinear coverage, which
data/augment.ts does not). Plus "ties": grid_sample(mode="nearest") of an 8x8 image (values
1..64) at the source points (u + 0.5, v + 0.5), every coordinate an exact half: the rounding rule.

  .venv/bin/python tools/rotate_reference.py [OUT.json]
"""
import json
import sys

import numpy as np
import torch

# torchvision 0.28 registers fake kernels through torch.library.register_fake at import, which
# this torch build may lack: a no-op decorator is enough for the functional transforms.
torch.library.register_fake = lambda *a, **k: (lambda f: f)
import torchvision  # noqa: E402
import torchvision.transforms.functional as TF  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "tests/golden/torchvision_rotate.json"
rng = np.random.default_rng(2024)
cases = []
for size in (13, 16):
    src = rng.integers(0, 256, size=(size, size), dtype=np.uint8)
    t = torch.from_numpy(src.astype(np.float32))[None]
    for deg in (10.0, -10.0, 7.3, -3.7, 90.0):
        case = {"size": size, "deg": deg, "src": src.flatten().tolist()}
        for name, mode, fill in (("nearest", InterpolationMode.NEAREST, 0),
                                 ("bilinear", InterpolationMode.BILINEAR, None)):
            r = TF.rotate(t, deg, interpolation=mode, fill=fill)[0].numpy()
            case[name] = [round(float(v), 4) for v in r.flatten()]
        cases.append(case)
W = 8
img = torch.arange(1, W * W + 1, dtype=torch.float32).view(1, 1, W, W)
pts = torch.arange(W, dtype=torch.float32) + 0.5  # source pixel coordinates, centres at integers
gy, gx = torch.meshgrid((2 * pts + 1) / W - 1, (2 * pts + 1) / W - 1, indexing="ij")
ties = torch.nn.functional.grid_sample(img, torch.stack([gx, gy], -1)[None], mode="nearest",
                                       padding_mode="zeros", align_corners=False)
with open(out, "w") as f:
    json.dump({
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "call": "F.rotate(img[1,S,S] float32, deg, NEAREST, fill=0) and (deg, BILINEAR, fill=None)",
        "cases": cases,
        "ties": {"size": W, "at": "(u + 0.5, v + 0.5)", "out": ties.flatten().int().tolist()},
    }, f, separators=(",", ":"))
    f.write("\n")
print(f"{len(cases)} cases -> {out}")
