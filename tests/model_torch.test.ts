/**
 * Independent cross-check against torchvision (PyTorch CPU, float64): with
 * identical weights and input, ResNet-18 and DenseNet-121 eval outputs,
 * training-mode outputs, every parameter gradient, the input gradient and
 * the BN running statistics after one training step. The reference files are
 * produced by tools/torch_reference.py; skipped when .venv/bin/python (with
 * torch, torchvision, safetensors) is absent.
 *
 * Input 4×3×32×32 (the deepest BN layers see 4 values per channel, so some
 * gradients are ill-conditioned). Tolerance per tensor: our f32 result's
 * relative L2 error against torch's f64 must be within 4× torch's own f32
 * error on the same tensor (the reference measures it), or 2e-4; and every
 * element within max(5%, 20× that error) of the tensor's largest magnitude.
 */
import { assert, assertClose, assertEquals, relErr } from "./helpers.ts";
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
/**
 * Runs the reference generator once, caching its output under /tmp keyed by
 * the script's contents (torch takes ~20 s to import on a small machine).
 */
function references(): Promise<string> {
  return refDir ??= (async () => {
    const src = await Deno.readFile(script);
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", src));
    const key = [...hash.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
    const dir = `/tmp/model_torch_ref_${key}`;
    if (await Deno.stat(`${dir}/done`).then(() => true, () => false)) return dir;
    const tmp = await Deno.makeTempDir({ prefix: "torch_ref_" });
    const r = await new Deno.Command(python, { args: [script, tmp], stderr: "piped" }).output();
    if (!r.success) {
      throw new Error(`torch_reference.py failed: ${new TextDecoder().decode(r.stderr)}`);
    }
    await Deno.writeTextFile(`${tmp}/done`, "");
    await Deno.rename(tmp, dir).catch(() => Deno.remove(tmp, { recursive: true })); // a racing run won
    return dir;
  })();
}

/** Relative L2 error ‖got − want‖ / ‖want‖. */

/**
 * got must be as close to torch's f64 value as torch's own f32 computation
 * is (times FACTOR), or within FLOOR; elementwise, within 5% of the largest
 * magnitude (so one bad channel cannot hide in an L2 norm).
 */
const FACTOR = 4, FLOOR = 2e-4;
function close(ref: Map<string, TensorData>, key: string, got: ArrayLike<number>, label: string) {
  const want = f32(ref.get(key), key);
  const f32err = f32(ref.get(`f32err.${key}`), `f32err.${key}`)[0];
  assertEquals(got.length, want.length, label);
  const e = relErr(got, want), bound = Math.max(FACTOR * f32err, FLOOR);
  assert(e <= bound, `${label}: relative error ${e.toExponential(2)} > ${bound.toExponential(2)}`);
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(want[i]));
  assertClose(got, want, { atol: Math.max(0.05, 20 * f32err) * m + 1e-7, rtol: 0, label });
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
  close(ref, "eval_out", await evalOut.read(), `${arch} eval out`);
  evalOut.release();

  model.train();
  const out = model.forward(x);
  close(ref, "train_out", await out.read(), `${arch} train out`);
  const seed = ref.get("seed")!;
  backward(out, B.fromArray(f32(seed, "seed"), seed.shape));
  out.release();

  close(ref, "grad.input", await B.read(x.grad!), `${arch} dx`);
  for (const [name, p] of model.namedParameters()) {
    close(ref, `grad.${name}`, await B.read(p.grad!), `${arch} grad ${name}`);
  }
  for (const e of model.stateDict().filter((e) => e.kind === "buffer")) {
    const got = await e.read();
    if (e.dtype === "I64") assertEquals([...got], [...ref.get(`state.${e.name}`)!.data], e.name);
    else close(ref, `state.${e.name}`, got as Float32Array, `${arch} ${e.name}`);
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
