/**
 * Independent cross-check against torchvision (PyTorch CPU, float64): with
 * identical weights and input, ResNet-18 and DenseNet-121 eval outputs,
 * training-mode outputs, every parameter gradient, the input gradient and
 * the BN running statistics after one training step. The reference files are
 * produced by tools/torch_reference.py; skipped when .venv/bin/python (with
 * torch, torchvision, safetensors) is absent.
 *
 * Tolerance: our f32 arithmetic against torch's f64, relative to each
 * tensor's largest magnitude: 1e-3 for outputs and statistics, 5e-3 for
 * gradients (batch-statistics BN over 2 images at 2×2 spatial amplifies
 * rounding in the deep layers).
 */
import { assertClose, assertEquals } from "./helpers.ts";
import type { Backend } from "../model/backend.ts";
import { cpuBackend } from "../model/backend_cpu.ts";
import { backward, noGrad, Var } from "../model/autograd.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { resnet18 } from "../model/resnet.ts";
import { densenet121 } from "../model/densenet.ts";
import { readSafetensors, type TensorData } from "../model/safetensors.ts";
import { loadModel } from "../model/state.ts";

const python = new URL("../.venv/bin/python", import.meta.url).pathname;
const script = new URL("../tools/torch_reference.py", import.meta.url).pathname;
const haveTorch = await Deno.stat(python).then(() => true, () => false);

let refDir: Promise<string> | null = null;
/** Runs the reference generator once per test process. */
function references(): Promise<string> {
  return refDir ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "torch_ref_" });
    const r = await new Deno.Command(python, { args: [script, dir], stderr: "piped" }).output();
    if (!r.success) {
      throw new Error(`torch_reference.py failed: ${new TextDecoder().decode(r.stderr)}`);
    }
    return dir;
  })();
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, label: string) {
  assertClose(got, want, { atol: rel * maxAbs(want) + 1e-7, rtol: rel, label });
}

const f32 = (t: TensorData | undefined, name: string) => {
  if (!t) throw new Error(`reference lacks ${name}`);
  return t.data as Float32Array;
};

async function crossCheck(
  B: Backend,
  arch: string,
  build: (B: Backend) => ClassifierNet,
): Promise<void> {
  const dir = await references();
  const ref = (await readSafetensors(`${dir}/${arch}_ref.safetensors`)).tensors;
  const model = build(B);
  const report = await loadModel(`${dir}/${arch}_weights.safetensors`, model);
  assertEquals(report.missing.length + report.unexpected.length, 0);

  const xT = ref.get("input")!;
  const x = new Var(B, B.fromArray(f32(xT, "input"), xT.shape), { requiresGrad: true });

  model.eval();
  const evalOut = noGrad(() => model.forward(x));
  close(await evalOut.read(), f32(ref.get("eval_out"), "eval_out"), 1e-3, `${arch} eval out`);
  evalOut.release();

  model.train();
  const out = model.forward(x);
  close(await out.read(), f32(ref.get("train_out"), "train_out"), 1e-3, `${arch} train out`);
  const seed = ref.get("seed")!;
  backward(out, B.fromArray(f32(seed, "seed"), seed.shape));
  out.release();

  close(await B.read(x.grad!), f32(ref.get("grad.input"), "grad.input"), 5e-3, `${arch} dx`);
  for (const [name, p] of model.namedParameters()) {
    const want = f32(ref.get(`grad.${name}`), `grad.${name}`);
    close(await B.read(p.grad!), want, 5e-3, `${arch} grad ${name}`);
  }
  for (const e of model.stateDict().filter((e) => e.kind === "buffer")) {
    const want = ref.get(`state.${e.name}`)!;
    const got = await e.read();
    if (e.dtype === "I64") assertEquals([...got], [...want.data], e.name);
    else close(got as Float32Array, want.data as Float32Array, 1e-3, `${arch} ${e.name}`);
  }
  x.dispose();
  model.dispose();
}

const ignore = !haveTorch;
const net = (f: (B: Backend, o: NetOptions) => ClassifierNet) => (B: Backend) =>
  f(B, { numClasses: 5, init: false });

Deno.test({
  name: "ResNet-18 matches torchvision: outputs, gradients, BN statistics (CPU backend)",
  ignore,
  fn: () => crossCheck(cpuBackend, "resnet18", net(resnet18)),
});

Deno.test({
  name: "DenseNet-121 matches torchvision: outputs, gradients, BN statistics (CPU backend)",
  ignore,
  fn: () => crossCheck(cpuBackend, "densenet121", net(densenet121)),
});
