/**
 * Whole backbones with f16 storage (ctx.precision "f16") on the GPU against the CPU backend's
 * emulation of the same storage (model/backend_cpu.ts: every activation output rounded to a half
 * once): ResNet-50 (bottlenecks, strided 1×1 downsampling) and DenseNet-121 (concatenation,
 * average-pooling transitions), eval-mode outputs and the gradients of a few weights after a
 * backward from them (eval mode: at 32 px, batch 2, the last training-mode BNs normalise 2 values
 * a channel, where any rounding can flip an output; training-mode BN in f16 is checked per kernel
 * in kernels_batchnorm.test.ts and through a whole MoCo step in train_f16.test.ts). Both sides round at the same places and differ only by summation order, so
 * a value that lands near a rounding boundary may round the other way: relative L2 error ≤ 1e-2.
 * A kernel that ignored the storage type would be off by orders of magnitude.
 */
import { assert, relErr } from "./helpers.ts";
import { gpu, randn } from "./gpu.ts";
import { hasF16 } from "./f16.ts";
import type { Backend } from "../model/backend.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import { gpuBackend } from "../model/backend_gpu.ts";
import { backward, Var } from "../model/autograd.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { resnet50 } from "../model/resnet.ts";
import { densenet121 } from "../model/densenet.ts";

const nets: [string, (B: Backend, o: NetOptions) => ClassifierNet][] = [
  ["ResNet-50", resnet50],
  ["DenseNet-121", densenet121],
];
for (const [name, build] of nets) {
  Deno.test({
    name: `${name} with f16 storage: GPU features and gradients match the CPU's f16 emulation`,
    ignore: !hasF16,
    async fn() {
      const shape = [2, 1, 32, 32];
      const x = randn(2 * 32 * 32, 11);
      const seed = randn(2 * 4, 12);
      const run = async (B: Backend, precision: "f32" | "f16") => {
        const net = build(B, { numClasses: 4, seed: 3, inChannels: 1 });
        net.eval(); // at 32 px the last BNs normalise 2 values: training mode is ill-conditioned
        const f = net.forward(new Var(B, B.fromArray(x, shape)), { precision });
        const y = await f.read();
        backward(f, B.fromArray(seed, [2, 4]));
        const ps = net.namedParameters();
        const picked = [ps[0], ps[Math.floor(ps.length / 2)], ps[ps.length - 3]];
        const grads = await Promise.all(picked.map(([, p]) => B.read(p.grad!)));
        f.dispose();
        net.dispose();
        return { y, grads, names: picked.map(([n]) => n) };
      };
      const g = await run(gpuBackend(gpu), "f16");
      const c = await run(cpuBackend, "f16");
      const c32 = await run(cpuBackend, "f32");
      const ey = relErr(g.y, c.y);
      assert(ey < 1e-2, `${name} output: ${ey.toExponential(2)} from the CPU's`);
      // Gradients through 50–121 layers without batch statistics lose more to f16 (the CPU's own
      // f16 emulation is 2–13% from its f32 at the stem), and the two f16 computations flip
      // different ReLU masks and roundings (measured: GPU vs CPU f16 up to 2.9× f16's own distance
      // from f32 near the output, 1.0× at the stem): within 4× that distance, or 2%. Garbage from
      // a kernel that ignores the storage type is off by 100%.
      c.grads.forEach((cg, i) => {
        const e = relErr(g.grads[i], cg), own = relErr(cg, c32.grads[i]);
        assert(
          e < Math.max(4 * own, 0.02),
          `${name} ${c.names[i]} gradient: ${e.toExponential(2)} from the CPU's f16 ` +
            `(which is ${own.toExponential(2)} from f32)`,
        );
      });
    },
  });
}
