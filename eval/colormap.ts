/** Colormaps for heatmaps: jet (piecewise linear) and inferno (perceptually uniform). */

export type ColormapName = "jet" | "inferno";

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Classic jet: dark blue → cyan → yellow → dark red. */
export function jet(t: number): [number, number, number] {
  t = clamp01(t);
  return [
    clamp01(1.5 - Math.abs(4 * t - 3)),
    clamp01(1.5 - Math.abs(4 * t - 2)),
    clamp01(1.5 - Math.abs(4 * t - 1)),
  ];
}

// matplotlib's inferno sampled at t = k/32 (k = 0..32); linear interpolation between these
// stays within 0.017 of the full 256-entry table.
const INFERNO: [number, number, number][] = [
  [0.0015, 0.0005, 0.0139],
  [0.0140, 0.0112, 0.0719],
  [0.0423, 0.0281, 0.1411],
  [0.0820, 0.0433, 0.2153],
  [0.1293, 0.0473, 0.2908],
  [0.1834, 0.0403, 0.3550],
  [0.2383, 0.0366, 0.3964],
  [0.2908, 0.0456, 0.4186],
  [0.3415, 0.0623, 0.4294],
  [0.3915, 0.0809, 0.4331],
  [0.4412, 0.0993, 0.4316],
  [0.4910, 0.1172, 0.4256],
  [0.5409, 0.1347, 0.4151],
  [0.5907, 0.1526, 0.4003],
  [0.6401, 0.1714, 0.3811],
  [0.6887, 0.1922, 0.3576],
  [0.7357, 0.2159, 0.3302],
  [0.7805, 0.2433, 0.2995],
  [0.8224, 0.2752, 0.2661],
  [0.8605, 0.3119, 0.2306],
  [0.8943, 0.3534, 0.1936],
  [0.9232, 0.3994, 0.1552],
  [0.9470, 0.4492, 0.1153],
  [0.9654, 0.5022, 0.0739],
  [0.9784, 0.5579, 0.0349],
  [0.9860, 0.6158, 0.0256],
  [0.9879, 0.6753, 0.0653],
  [0.9841, 0.7361, 0.1295],
  [0.9746, 0.7977, 0.2063],
  [0.9606, 0.8591, 0.2980],
  [0.9476, 0.9174, 0.4107],
  [0.9545, 0.9659, 0.5404],
  [0.9884, 0.9984, 0.6449],
];

/** Inferno: black → purple → orange → pale yellow, monotonic in lightness. */
export function inferno(t: number): [number, number, number] {
  const x = clamp01(t) * (INFERNO.length - 1);
  const k = Math.min(Math.floor(x), INFERNO.length - 2), w = x - k;
  const a = INFERNO[k], b = INFERNO[k + 1];
  return [a[0] + w * (b[0] - a[0]), a[1] + w * (b[1] - a[1]), a[2] + w * (b[2] - a[2])];
}

export function colormap(name: ColormapName): (t: number) => [number, number, number] {
  if (name === "jet") return jet;
  if (name === "inferno") return inferno;
  throw new RangeError(`unknown colormap "${name}" (use jet or inferno)`);
}
