/**
 * The reference for the MoCo step benchmark: a plain ResNet-18 training step
 * in TF.js on its WebGPU backend (same adapter as ours). torchvision's
 * structure in NHWC (TF.js's native layout): 7×7/2 stem, BN, ReLU, 3×3/2 max
 * pool, four stages of two BasicBlocks (1×1/2 conv + BN downsample where the
 * shape changes), global average pool, fc. One step = forward (BN on batch
 * statistics) + softmax cross-entropy + gradients of every variable + SGD
 * with momentum. Running BN statistics are not tracked (per-channel vectors:
 * negligible cost, and TF.js cannot assign variables inside the gradient tape).
 */
import type * as TF from "@tensorflow/tfjs";
import type { Tf } from "./tfjs.ts";

export interface TfStepConfig {
  batch: number;
  size: number;
  inChannels: number;
  numClasses: number;
}

export interface TfStepTiming {
  /** Wall time of each timed step (ms), each ended by a loss readback. */
  stepsMs: number[];
  /** Loss of the last step (finite if the step computed something). */
  loss: number;
}

type V = TF.Variable;
interface Bn {
  gamma: V;
  beta: V;
}
interface Block {
  conv1: V;
  bn1: Bn;
  conv2: V;
  bn2: Bn;
  stride: number;
  down: { conv: V; bn: Bn } | null;
}
interface Net {
  stem: V;
  bn1: Bn;
  blocks: Block[];
  fcW: V;
  fcB: V;
}

/** Builds the variables with torchvision's init (kaiming normal, fan_out, relu). */
function buildNet(tf: Tf, inC: number, numClasses: number): Net {
  let seed = 1;
  const conv = (k: number, cin: number, cout: number) =>
    tf.variable(
      tf.randomNormal([k, k, cin, cout], 0, Math.sqrt(2 / (cout * k * k)), "float32", seed++),
    );
  const bn = (c: number): Bn => ({
    gamma: tf.variable(tf.ones([c])),
    beta: tf.variable(tf.zeros([c])),
  });
  const blocks: Block[] = [];
  let cin = 64;
  for (const [planes, stride] of [[64, 1], [128, 2], [256, 2], [512, 2]]) {
    for (let b = 0; b < 2; b++) {
      const s = b === 0 ? stride : 1;
      const down = s !== 1 || cin !== planes
        ? { conv: conv(1, cin, planes), bn: bn(planes) }
        : null;
      blocks.push({
        conv1: conv(3, cin, planes),
        bn1: bn(planes),
        conv2: conv(3, planes, planes),
        bn2: bn(planes),
        stride: s,
        down,
      });
      cin = planes;
    }
  }
  const bound = 1 / Math.sqrt(512);
  return {
    stem: conv(7, inC, 64),
    bn1: bn(64),
    blocks,
    fcW: tf.variable(tf.randomUniform([512, numClasses], -bound, bound, "float32", seed++)),
    fcB: tf.variable(tf.randomUniform([numClasses], -bound, bound, "float32", seed++)),
  };
}

function variables(net: Net): V[] {
  const out: V[] = [net.stem, net.bn1.gamma, net.bn1.beta];
  for (const b of net.blocks) {
    out.push(b.conv1, b.bn1.gamma, b.bn1.beta, b.conv2, b.bn2.gamma, b.bn2.beta);
    if (b.down) out.push(b.down.conv, b.down.bn.gamma, b.down.bn.beta);
  }
  out.push(net.fcW, net.fcB);
  return out;
}

/** Logits of a batch [N, H, W, C] in training mode (batch statistics). */
function forward(tf: Tf, net: Net, x: TF.Tensor4D): TF.Tensor2D {
  // torchvision's symmetric zero padding, written out (TF's "same" pads unevenly).
  const conv = (h: TF.Tensor4D, w: V, stride: number) => {
    const k = w.shape[0]!, p = (k - 1) >> 1;
    return tf.conv2d(h, w as TF.Tensor4D, stride, [[0, 0], [p, p], [p, p], [0, 0]]);
  };
  const bn = (h: TF.Tensor4D, p: Bn) => {
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    return tf.batchNorm(h, mean, variance, p.beta, p.gamma, 1e-5) as TF.Tensor4D;
  };
  let h: TF.Tensor4D = tf.relu(bn(conv(x, net.stem, 2), net.bn1));
  // 3×3/2 pad 1 (inputs are ≥ 0 after the ReLU, so zero padding never changes a max).
  h = tf.maxPool(h, 3, 2, 1);
  for (const b of net.blocks) {
    let y = tf.relu(bn(conv(h, b.conv1, b.stride), b.bn1));
    y = bn(conv(y, b.conv2, 1), b.bn2);
    const id = b.down ? bn(conv(h, b.down.conv, b.stride), b.down.bn) : h;
    h = tf.relu(tf.add(y, id));
  }
  const pooled = tf.mean(h, [1, 2]) as TF.Tensor2D;
  return tf.add(tf.matMul(pooled, net.fcW), net.fcB);
}

/**
 * Runs `warmup` untimed and then `steps` timed training steps on random
 * inputs and labels; each step ends with `await loss.data()` so that the
 * time covers the device work.
 */
export async function timeTfResnet18Step(
  tf: Tf,
  cfg: TfStepConfig,
  warmup: number,
  steps: number,
): Promise<TfStepTiming> {
  const { batch: N, size: S, inChannels: C, numClasses: K } = cfg;
  // tidy: the initial values that tf.variable copies are released, the variables kept.
  let net!: Net;
  tf.tidy(() => {
    net = buildNet(tf, C, K);
  });
  const vars = variables(net);
  const opt = tf.train.momentum(0.01, 0.9);
  const x = tf.randomNormal([N, S, S, C], 0, 1, "float32", 7) as TF.Tensor4D;
  const labels = tf.tidy(() =>
    tf.oneHot(tf.tensor1d(Array.from({ length: N }, (_, i) => i % K), "int32"), K)
  );
  const step = async () => {
    const loss = opt.minimize(
      () => tf.losses.softmaxCrossEntropy(labels, forward(tf, net, x)) as TF.Scalar,
      true,
      vars,
    )!;
    const v = (await loss.data())[0];
    loss.dispose();
    return v;
  };
  let loss = NaN;
  const stepsMs: number[] = [];
  try {
    for (let i = 0; i < warmup; i++) loss = await step();
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      loss = await step();
      stepsMs.push(performance.now() - t0);
    }
  } finally {
    opt.dispose();
    tf.dispose([x, labels, ...vars]);
  }
  if (!Number.isFinite(loss)) throw new Error(`TF.js ResNet-18 step: loss is ${loss}`);
  return { stepsMs, loss };
}
