"""Same-card reference for `deno task bench --only gpu`: PyTorch (cuDNN/cuBLAS) fp32 with
TF32 off, at the same shapes: ResNet-18's 3x3 convs at batch 64 (forward, grad-input,
grad-weight) and square matmuls. Throughput: ms per call over many calls between two
CUDA events. Run where PyTorch has CUDA; not a dependency of the project."""
import sys

import torch

if not torch.cuda.is_available():
    print("torch_ref: no CUDA device; skipped")
    sys.exit(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = torch.device("cuda")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, TF32 off, cudnn.benchmark on")


def per_call(fn, calls=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(3):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(calls):
            fn()
        b.record()
        torch.cuda.synchronize()
        best = min(best, a.elapsed_time(b) / calls)
    return best


def row(name, flops, ms):
    print(f"{name:<44} {ms:9.3f} ms {flops / (ms * 1e6):10.1f} GFLOP/s")


for c, h in [(64, 56), (128, 28), (256, 14), (512, 7)]:
    n = 64
    x = torch.randn(n, c, h, h, device=dev)
    w = torch.randn(c, c, 3, 3, device=dev)
    dy = torch.randn(n, c, h, h, device=dev)
    flops = 2 * n * c * h * h * c * 9
    row(f"conv fwd 64x{c}x{h}x{h}", flops,
        per_call(lambda: torch.nn.functional.conv2d(x, w, padding=1)))
    row(f"conv grad-input 64x{c}x{h}x{h}", flops,
        per_call(lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, padding=1)))
    row(f"conv grad-weight 64x{c}x{h}x{h}", flops,
        per_call(lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, padding=1)))
for n in (1024, 2048, 4096):
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    row(f"matmul {n}^3", 2 * n ** 3, per_call(lambda: a @ b))
