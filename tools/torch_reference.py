"""Reference outputs from torchvision (PyTorch CPU, float64) for tests/model_torch.test.ts.

    .venv/bin/python tools/torch_reference.py OUTDIR [--batch 4] [--size 32] [--classes 5]
    .venv/bin/python tools/torch_reference.py --keys > tests/golden/torchvision_state_keys.json

For ResNet-18 and DenseNet-121 it writes, per architecture:
  OUTDIR/<arch>_weights.safetensors  the model's state_dict in f32 (I64 counters): torchvision's
                                     default init, BN affine and running statistics randomised
                                     so that they matter
  OUTDIR/<arch>_ref.safetensors      input [B,3,S,S], seed [B,K], eval_out, train_out,
                                     grad.<param> and grad.input after one training-mode
                                     forward with loss = sum(train_out * seed),
                                     state.<buffer> (BN running statistics after that step),
                                     f32err.<each of those>: torch's own f32 relative L2 error
The reference is computed in float64 from the same f32 weights and input; the same
computation in f32 gives f32err, the conditioning of each value, which the test uses to
scale its tolerance.

PyTorch is a test-time reference only; nothing in the project imports it at runtime.
The torchvision wheel available here is a CUDA build whose C++ ops do not load on CPU torch;
the models themselves only need Python, so register_fake is stubbed before the import.
"""

import argparse
import copy
import json
import os
import sys

import torch

torch.library.register_fake = lambda *a, **k: (lambda f: f)  # see the docstring
import torchvision  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

ARCHS = ["resnet18", "densenet121"]


def build(arch: str, classes: int) -> torch.nn.Module:
    torch.manual_seed({"resnet18": 1, "densenet121": 2}[arch])
    m = getattr(torchvision.models, arch)(num_classes=classes)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.1)
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(3)
    return m


def reference(arch: str, outdir: str, batch: int, size: int, classes: int) -> None:
    m = build(arch, classes)
    weights = {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}
    save_file(weights, os.path.join(outdir, f"{arch}_weights.safetensors"))

    g = torch.Generator().manual_seed(7)
    x = torch.randn(batch, 3, size, size, generator=g)
    seed = torch.randn(batch, classes, generator=g)
    r64 = run(copy.deepcopy(m).double(), x, seed)
    r32 = run(copy.deepcopy(m), x, seed)
    ref = {"input": x, "seed": seed, **r64}
    # torch's own f32 error against f64, per tensor: how well-conditioned each
    # value is (BN over few values makes some deep gradients sensitive).
    for k, v in r64.items():
        if v.is_floating_point():
            err = (r32[k].double() - v).norm() / v.norm().clamp_min(1e-30)
            ref[f"f32err.{k}"] = err.reshape(1)
    ref = {
        k: (v.detach().float() if v.is_floating_point() else v.detach()).contiguous()
        for k, v in ref.items()
    }
    save_file(ref, os.path.join(outdir, f"{arch}_ref.safetensors"))


def run(m: torch.nn.Module, x: torch.Tensor, seed: torch.Tensor) -> dict:
    """Eval output, then one training-mode forward/backward; all results in m's dtype."""
    dt = next(m.parameters()).dtype
    m.eval()
    with torch.no_grad():
        eval_out = m(x.to(dt))
    m.train()
    xin = x.to(dt).requires_grad_(True)
    train_out = m(xin)
    (train_out * seed.to(dt)).sum().backward()
    r = {"eval_out": eval_out, "train_out": train_out.detach(), "grad.input": xin.grad}
    for name, p in m.named_parameters():
        r[f"grad.{name}"] = p.grad
    for name, b in m.named_buffers():
        r[f"state.{name}"] = b
    return {k: v.detach() for k, v in r.items()}


def keys() -> None:
    out = {}
    for name in ["resnet18", "resnet34", "resnet50", "densenet121"]:
        m = getattr(torchvision.models, name)()
        out[name] = {
            "params": sum(p.numel() for p in m.parameters()),
            "state": [f"{k} {','.join(map(str, v.shape))}" for k, v in m.state_dict().items()],
        }
    print(json.dumps(out, indent=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--keys", action="store_true", help="print torchvision state_dict keys")
    a = ap.parse_args()
    if a.keys:
        keys()
        return
    if not a.outdir:
        ap.error("OUTDIR is required")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for arch in ARCHS:
        reference(arch, a.outdir, a.batch, a.size, a.classes)
    print(f"wrote {len(ARCHS) * 2} files to {a.outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
