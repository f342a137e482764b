/**
 * Procedural chest-radiograph renderer. Each pixel sums tissue "densities" along the beam (soft
 * tissue thicker at the centre, arms, lungs as air that subtracts, heart, mediastinum, spine,
 * ribs, clavicles, diaphragm domes and abdomen, lung markings as smooth noise) plus the findings
 * of the scene; intensity = detector curve of 1 - exp(-k·density), then blur and noise.
 * The density is rendered upright in patient coordinates on a canvas (so per-row and per-column
 * terms are computed once), then warped by the acquisition's shift/scale/rotation with bilinear
 * sampling. Edges are ~1-pixel ramps, so images are anti-aliased at any size (64–320 px).
 * Speed: 3–8 ms per 128² frontal image on one core of the shared 2-core dev box (measured).
 */
import { Rng } from "../../util/rng.ts";
import type { GrayImage } from "../gray_image.ts";
import type { Acquisition, Anatomy, Findings, Scene } from "./scene.ts";

/** Smooth value noise on a (g+1)² grid, sampled bilinearly over [0,1]². */
class ValueNoise {
  private readonly v: Float32Array;
  constructor(rng: Rng, private readonly g: number) {
    this.v = new Float32Array((g + 1) * (g + 1));
    for (let i = 0; i < this.v.length; i++) this.v[i] = 2 * rng.uniform() - 1;
  }
  at(x: number, y: number): number {
    const g = this.g;
    const fx = Math.min(g - 1e-6, Math.max(0, x * g)), fy = Math.min(g - 1e-6, Math.max(0, y * g));
    const ix = fx | 0, iy = fy | 0, tx = fx - ix, ty = fy - iy;
    const sx = tx * tx * (3 - 2 * tx), sy = ty * ty * (3 - 2 * ty); // no grid creases
    const o = iy * (g + 1) + ix, v = this.v;
    const a = v[o] + (v[o + 1] - v[o]) * sx;
    const b = v[o + g + 1] + (v[o + g + 2] - v[o + g + 1]) * sx;
    return a + (b - a) * sy;
  }
}

/** ECG lead positions (x, y pairs) for the support-devices finding. */
const ECG_LEADS = [-0.22, 0.3, 0.24, 0.32];

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const smooth = (t: number) => {
  const c = clamp01(t);
  return c * c * (3 - 2 * c);
};

/** The upright canvas: patient coordinates X = x0 + i·pitch, Y = y0 + j·pitch. */
interface Canvas {
  w: number;
  h: number;
  x0: number;
  y0: number;
  pitch: number;
  data: Float32Array;
}

/**
 * Patient-coordinate bounding box of a width×height image under the acquisition transform.
 * Image coordinates are normalised by the width and centred: u in [-0.5, 0.5] across, and
 * [-h/2w, h/2w] down, so a taller image shows more neck and abdomen.
 */
function canvasFor(q: Acquisition, width: number, height: number): Canvas {
  const cos = Math.cos(q.rotation), sin = Math.sin(q.rotation);
  const hh = height / (2 * width);
  let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
  for (const [cx, cy] of [[-0.5, -hh], [0.5, -hh], [-0.5, hh], [0.5, hh]]) {
    const ux = cx - q.shiftX, uy = cy - q.shiftY;
    const X = (cos * ux + sin * uy) / q.scale, Y = (-sin * ux + cos * uy) / q.scale + 0.5;
    xmin = Math.min(xmin, X);
    xmax = Math.max(xmax, X);
    ymin = Math.min(ymin, Y);
    ymax = Math.max(ymax, Y);
  }
  const pitch = 1 / (width * q.scale);
  const w = Math.ceil((xmax - xmin) / pitch) + 3, h = Math.ceil((ymax - ymin) / pitch) + 3;
  return { w, h, x0: xmin - pitch, y0: ymin - pitch, pitch, data: new Float32Array(w * h) };
}

/** Warps the upright canvas into the image (inverse map, bilinear; outside = 0). */
function warp(c: Canvas, q: Acquisition, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height);
  const cos = Math.cos(q.rotation), sin = Math.sin(q.rotation);
  const k = 1 / (q.scale * c.pitch);
  for (let py = 0; py < height; py++) {
    const uy = (py + 0.5 - height / 2) / width - q.shiftY;
    for (let px = 0; px < width; px++) {
      const ux = (px + 0.5) / width - 0.5 - q.shiftX;
      const fx = (cos * ux + sin * uy) * k - c.x0 / c.pitch;
      const fy = (-sin * ux + cos * uy) * k + (0.5 - c.y0) / c.pitch;
      const ix = Math.floor(fx), iy = Math.floor(fy);
      if (ix < 0 || iy < 0 || ix >= c.w - 1 || iy >= c.h - 1) continue;
      const tx = fx - ix, ty = fy - iy, o = iy * c.w + ix, d = c.data;
      const a = d[o] + (d[o + 1] - d[o]) * tx;
      const b = d[o + c.w] + (d[o + c.w + 1] - d[o + c.w]) * tx;
      out[py * width + px] = a + (b - a) * ty;
    }
  }
  return out;
}

/** Per-scene geometry shared by the frontal renderer and its findings. */
interface Geometry {
  a: Anatomy;
  domeR: number;
  domeL: number;
  /** Heart: centre, rotated-ellipse axes and angle. */
  hx: number;
  hy: number;
  ha: number;
  hb: number;
  hcos: number;
  hsin: number;
  hilumY: number;
}

function geometry(s: Scene): Geometry {
  const { anatomy: a, acquisition: q, findings: f } = s;
  const domeR = a.domeRight + q.inspiration, domeL = a.domeLeft + q.inspiration;
  // AP projection magnifies the heart; CTR = horizontal heart extent / (2·thoraxW).
  const ctr = f.ctr * (q.projection === "AP" ? 1.08 : 1);
  const th = 0.5, hcos = Math.cos(th), hsin = Math.sin(th);
  const ex = ctr * a.thoraxW;
  const ha = ex / Math.sqrt(hcos * hcos + 0.5 * hsin * hsin), hb = ha * Math.sqrt(0.5);
  const ey = Math.sqrt(ha * ha * hsin * hsin + hb * hb * hcos * hcos);
  return {
    a,
    domeR,
    domeL,
    hx: ex / 3,
    hy: Math.min(domeR, domeL) - 0.8 * ey,
    ha,
    hb,
    hcos,
    hsin,
    hilumY: Math.min(domeR, domeL) - 1.5 * ey,
  };
}

/** Diaphragm height under a lung at lateral distance ax (≥ 0) for dome top `top`. */
function domeY(a: Anatomy, top: number, ax: number): number {
  const t = (ax - 0.5 * a.thoraxW) / (0.53 * a.thoraxW);
  return top - a.domeH * (1 - t * t);
}

/** Renders the frontal (PA/AP) view of a scene at width×height (default square). */
export function renderFrontal(scene: Scene, width: number, height = width): GrayImage {
  const { anatomy: a, acquisition: q, findings: f } = scene;
  const g = geometry(scene);
  const rng = new Rng(q.textureSeed);
  const n1 = new ValueNoise(rng, 9), n2 = new ValueNoise(rng, 22), n3 = new ValueNoise(rng, 5);
  const c = canvasFor(q, width, height);
  const aa = 1.2 * c.pitch, inv = 1 / aa;
  const T = a.thoraxW, s = a.ribSpacing;
  const apexX = 0.5 * T;
  const carina = a.lungTop + 0.16;
  // Per-column terms.
  const colAx = new Float32Array(c.w), colDomeR = new Float32Array(c.w);
  const colDomeL = new Float32Array(c.w), colRib = new Float32Array(c.w);
  const colRibA = new Float32Array(c.w), colClav = new Float32Array(c.w);
  const colHil = new Float32Array(c.w);
  for (let i = 0; i < c.w; i++) {
    const X = c.x0 + i * c.pitch, ax = Math.abs(X), r = ax / T;
    colAx[i] = ax;
    colHil[i] = Math.exp(-(((ax - 0.1) / 0.16) ** 2));
    colDomeR[i] = domeY(a, g.domeR, ax);
    colDomeL[i] = domeY(a, g.domeL, ax);
    colRib[i] = s * (3.2 * r * r - 0.8 * r); // posterior ribs droop laterally
    colRibA[i] = s * 1.5 * (1 - r); // anterior ribs slope down medially
    const t = (ax - 0.035) / 0.3;
    colClav[i] = t >= 0 && t <= 1.05 ? a.clavicleY - 0.045 * t + 0.014 * Math.sin(Math.PI * t) : -1;
  }
  for (let j = 0; j < c.h; j++) {
    const Y = c.y0 + j * c.pitch;
    // Per-row terms: torso outline, lung borders.
    const shoulder = a.bodyW + 0.03;
    const bw = Y < 0.15
      ? a.neckW + (shoulder - a.neckW) * smooth((Y + 0.02) / 0.17)
      : shoulder + (a.bodyW - shoulder) * smooth((Y - 0.15) / 0.25);
    const tl = Y - a.lungTop;
    const lat = tl <= 0
      ? apexX
      : apexX + (T - apexX) * Math.sqrt(1 - (1 - Math.min(1, tl / 0.3)) ** 2);
    const medBase = a.mediastinumW * (0.85 + 0.3 * clamp01(tl / 0.3));
    const med = tl <= 0
      ? apexX
      : apexX - (apexX - medBase) * Math.sqrt(1 - (1 - Math.min(1, tl / 0.12)) ** 2);
    const apexCap = clamp01(0.5 + tl * inv);
    const rowHil = Math.exp(-(((Y - g.hilumY) / 0.2) ** 2));
    const armY = clamp01((Y - 0.08) / 0.06) * clamp01((0.8 - Y) / 0.1);
    const row = j * c.w;
    for (let i = 0; i < c.w; i++) {
      const X = c.x0 + i * c.pitch, ax = colAx[i], side = X < 0 ? -1 : 1;
      let d = 0;
      // Arms beside the chest.
      if (armY > 0 && ax > a.bodyW + a.armGap - 0.01) {
        const t = (ax - (a.bodyW + a.armGap + 0.04)) / 0.04;
        if (t > -1.2 && t < 1.2) d += 0.9 * armY * Math.sqrt(clamp01(1 - t * t));
      }
      const inBody = clamp01(0.5 + (bw - ax) * inv);
      if (inBody <= 0) {
        c.data[row + i] = d;
        continue;
      }
      const xr = X / bw;
      d += a.softDensity * inBody * Math.sqrt(clamp01(1 - xr * xr)) * clamp01((Y + 0.05) / 0.05);
      const top = side < 0 ? g.domeR : g.domeL;
      const dy = side < 0 ? colDomeR[i] : colDomeL[i];
      // Abdomen under the domes (liver side a bit denser).
      const below = clamp01(0.5 + (Y - dy) * inv);
      d += ((side < 0 ? 0.36 : 0.3) + 0.25 * clamp01((Y - dy) / 0.25)) * below * inBody;
      // Heart (rotated ellipse).
      const hdx = X - g.hx, hdy = Y - g.hy;
      const hu = (hdx * g.hcos + hdy * g.hsin) / g.ha, hv = (-hdx * g.hsin + hdy * g.hcos) / g.hb;
      const hr = Math.sqrt(hu * hu + hv * hv);
      const heart = hr < 1.3 ? clamp01(0.5 + (1 - hr) * g.hb * inv) * (1 - below) : 0;
      d += 0.4 * heart * (0.75 + 0.25 * Math.sqrt(clamp01(1 - hr * hr)));
      // Lungs: air lowers the density; hidden behind the heart.
      let lungRaw = 0, lung = 0;
      if (ax > med - aa && ax < lat + aa && Y > a.lungTop - 0.03) {
        lungRaw = clamp01(0.5 + (ax - med) * inv) * clamp01(0.5 + (lat - ax) * inv) *
          clamp01(0.5 + (dy - Y) * inv) * apexCap;
        lung = lungRaw * (1 - 0.8 * heart);
        if (lungRaw > 0) {
          const t = (ax - 0.5 * (med + lat)) / (0.5 * (lat - med) + 1e-6);
          const depth = (0.55 + 0.45 * Math.sqrt(clamp01(1 - t * t))) *
            (0.7 + 0.3 * clamp01(tl / 0.35));
          let air = a.lungAir * depth;
          // Vessel markings: densest at the hila, fading to the periphery.
          const hil = colHil[i] * rowHil;
          const u = X + 0.5;
          let marks = (0.05 + 0.14 * hil) * (0.6 * n1.at(u, Y) + 0.4 * n2.at(u, Y)) + 0.1 * hil;
          const ptx = f.pneumothorax;
          if (ptx && ptx.side === side) {
            // Collapsed lung: rim of air without markings, thin visceral pleural line.
            const edge = lat - ptx.size * 0.4 * T * (1 - 0.6 * clamp01(tl / (top - a.lungTop)));
            const rim = clamp01(0.5 + (ax - edge) * inv);
            marks *= 1 - rim;
            air += 0.15 * rim;
            d += 0.25 * Math.max(0, 1 - Math.abs(ax - edge) / (0.8 * aa));
          }
          d -= lung * (air - marks);
        }
      }
      // Mediastinum above the heart, aortic knob, spine, trachea.
      if (Y < g.hy) d += 0.32 * clamp01(0.5 + (medBase - Math.abs(X - 0.008)) * inv);
      {
        const kx = X - 0.05 - 0.15 * T * 0.3, ky = Y - a.lungTop - 0.1;
        const kr = Math.sqrt(kx * kx + ky * ky);
        if (kr < 0.05) d += 0.3 * clamp01(0.5 + (0.03 - kr) * inv);
      }
      if (ax < 0.04) {
        d += 0.15 * clamp01(0.5 + (0.03 - ax) * inv) *
          (0.7 + 0.3 * Math.cos((2 * Math.PI * Y) / s));
        if (Y < carina) {
          d -= 0.25 * clamp01(0.5 + (0.011 - ax) * inv) * clamp01((carina - Y) / 0.02);
        }
      }
      // Ribs (only over the chest).
      if (ax > 0.03 && ax < T + 0.03 && Y > a.lungTop - 0.1 && Y < top + 0.05) {
        const base = a.lungTop - 0.04;
        const k = Math.round((Y - base - colRib[i]) / s);
        const e = 0.5 * a.ribThick * s - Math.abs(Y - (base + k * s + colRib[i]));
        if (e > -aa) {
          const cortex = 1 + 0.5 * clamp01(1 - e / (0.1 * s)); // brighter rib margins
          d += a.ribDensity * clamp01(0.5 + e * inv) * cortex * clamp01((ax - 0.03) / 0.04);
        }
        if (ax > 0.3 * T) {
          const kA = Math.round((Y - a.lungTop - colRibA[i]) / (1.25 * s));
          const eA = 0.45 * a.ribThick * s - Math.abs(Y - (a.lungTop + kA * 1.25 * s + colRibA[i]));
          d += 0.4 * a.ribDensity * clamp01(0.5 + eA * inv);
        }
      }
      // Clavicles.
      const yc = colClav[i];
      if (yc > 0) d += 0.3 * clamp01(0.5 + (0.012 - Math.abs(Y - yc)) * inv);
      // Breasts.
      if (a.breast > 0) {
        const bx = (ax - 0.62 * T) / 0.17, by = (Y - (g.domeR - 0.05)) / 0.11;
        const br = Math.sqrt(bx * bx + by * by);
        if (br < 1.2) d += a.breast * inBody * clamp01(0.5 + (1 - br) * 0.11 * inv);
      }
      // Gastric bubble under the left dome.
      if (side > 0 && a.gastricBubble > 0) {
        const gx = (ax - 0.13) / 0.05, gy = (Y - g.domeL - 0.04) / 0.028;
        const gr = Math.sqrt(gx * gx + gy * gy);
        if (gr < 1.2) d -= 0.3 * a.gastricBubble * clamp01(0.5 + (1 - gr) * 0.028 * inv);
      }
      d += findingsDensity(f, a, X, Y, ax, side, top, lungRaw, lung, aa, n3);
      c.data[row + i] = d;
    }
  }
  return expose(warp(c, q, width, height), width, height, q, rng);
}

/**
 * Extra density of the findings at a point. lungRaw: lung mask ignoring the heart; lung: the
 * visible lung (less behind the heart shadow).
 */
function findingsDensity(
  f: Findings,
  a: Anatomy,
  X: number,
  Y: number,
  ax: number,
  side: number,
  top: number,
  lungRaw: number,
  lung: number,
  aa: number,
  noise: ValueNoise,
): number {
  if (lungRaw <= 0 && !f.devices) return 0;
  let d = 0;
  const inv = 1 / aa;
  // Pleural effusion: fluid rising along the lateral wall (meniscus), blunting the angle.
  const eff = side < 0 ? f.effusionRight : f.effusionLeft;
  if (eff > 0 && lungRaw > 0) {
    const r = clamp01(ax / a.thoraxW);
    const h = 0.06 + 0.36 * eff;
    const surface = top + 0.015 - h * (0.35 + 0.65 * r * r);
    const fuzz = 0.005 + 0.01 * (1 - eff);
    const fluid = clamp01((Y - surface) / fuzz);
    // Fluid replaces lung air (plus some soft-tissue density): it only shows where there is lung.
    d += fluid * lungRaw * (a.lungAir * (0.9 + 0.3 * eff) + 0.1) *
      (0.85 + 0.15 * clamp01((Y - surface) / 0.04));
  }
  if (lung > 0) {
    if (f.edema > 0) {
      const px = (ax - 0.1) / 0.11, py = (Y - 0.45) / 0.17;
      const p = Math.exp(-(px * px + py * py));
      d += lung * f.edema * (0.25 * p + 0.08 + 0.05 * noise.at(X + 0.5, Y));
    }
    for (const b of f.consolidation) {
      const dx = X - b.x, dy = Y - b.y, r2 = (dx * dx + dy * dy) / (b.r * b.r);
      if (r2 < 2.5) {
        d += lung * b.density * Math.exp(-1.5 * r2) * (0.75 + 0.5 * noise.at(X + 0.5, Y));
      }
    }
    const at = f.atelectasis;
    if (at) {
      const dx = X - at.x, dy = Y - at.y, c = Math.cos(at.angle), s = Math.sin(at.angle);
      const along = dx * c + dy * s, across = -dx * s + dy * c;
      if (Math.abs(along) < at.len + 0.02) {
        d += lung * at.density * clamp01(0.5 + (0.007 - Math.abs(across)) * inv) *
          clamp01((at.len - Math.abs(along)) / 0.02);
      }
    }
    const nd = f.nodule;
    if (nd) {
      const dx = X - nd.x, dy = Y - nd.y;
      d += nd.density * clamp01(0.5 + (nd.r - Math.sqrt(dx * dx + dy * dy)) * inv);
    }
    if (f.tb) {
      for (const b of f.tb.blobs) {
        const dx = X - b.x, dy = Y - b.y, r2 = (dx * dx + dy * dy) / (b.r * b.r);
        if (r2 < 3) {
          d += lung * b.density * Math.exp(-1.2 * r2) * (0.6 + 0.8 * noise.at(X + 0.5, Y));
        }
      }
      const cv = f.tb.cavity;
      if (cv) {
        const dx = X - cv.x, dy = Y - cv.y, r = Math.sqrt(dx * dx + dy * dy);
        d -= lung * 0.5 * clamp01(0.5 + (cv.r - r) * inv);
        d += 0.25 * Math.max(0, 1 - Math.abs(r - cv.r) / (1.5 * aa));
      }
    }
  }
  if (f.devices) {
    // Endotracheal tube down the midline, a central line from the right, two ECG leads.
    if (Y < a.lungTop + 0.13 && Y > -0.1) {
      d += 0.9 * clamp01(0.5 + (0.004 - Math.abs(X - 0.004)) * inv);
    }
    if (Y > 0.12 && Y < 0.38) {
      const lx = -0.25 + 0.23 * Math.sqrt((Y - 0.12) / 0.26);
      d += 0.7 * clamp01(0.5 + (0.003 - Math.abs(X - lx)) * inv);
    }
    for (let e = 0; e < ECG_LEADS.length; e += 2) {
      const dx = X - ECG_LEADS[e], dy = Y - ECG_LEADS[e + 1];
      if (Math.abs(dx) < 0.03 && Math.abs(dy) < 0.03) {
        const r = Math.sqrt(dx * dx + dy * dy);
        d += 0.6 * Math.max(0, 1 - Math.abs(r - 0.014) / (1.5 * aa));
      }
    }
  }
  return d;
}

/** Detector response (via a lookup table), optional blur, noise, quantisation. */
function expose(
  density: Float32Array,
  width: number,
  height: number,
  q: Acquisition,
  rng: Rng,
): GrayImage {
  const N = 2048, DMAX = 6, lut = new Float32Array(N + 2);
  for (let i = 0; i <= N + 1; i++) {
    const v = 1 - Math.exp(-q.exposure * ((i * DMAX) / N));
    lut[i] = q.gain * Math.pow(v, q.gamma) + q.bias;
  }
  let img = density;
  const k = N / DMAX;
  for (let i = 0; i < img.length; i++) {
    const f = Math.min(N, Math.max(0, img[i] * k)), j = f | 0;
    img[i] = lut[j] + (lut[j + 1] - lut[j]) * (f - j);
  }
  if (q.blur > 0) img = blur3(img, width, height, q.blur);
  const out = new Uint8Array(width * height);
  // Gaussian-like noise from the four bytes of one draw (Irwin–Hall n=4, unit variance).
  const scale = q.noise / Math.sqrt((4 * (256 * 256 - 1)) / 12);
  for (let i = 0; i < img.length; i++) {
    const r = rng.nextU32();
    const z = (r & 255) + ((r >>> 8) & 255) + ((r >>> 16) & 255) + (r >>> 24) - 510;
    const v = (img[i] + z * scale) * 255;
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
  }
  return { width, height, data: out };
}

/** Separable [w/4, 1 - w/2, w/4] blur (w in [0, 1]). */
function blur3(src: Float32Array, width: number, height: number, w: number): Float32Array {
  const side = w / 4, mid = 1 - w / 2;
  const tmp = new Float32Array(src.length), out = new Float32Array(src.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      tmp[i] = mid * src[i] + side * (src[x > 0 ? i - 1 : i] + src[x < width - 1 ? i + 1 : i]);
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      out[i] = mid * tmp[i] +
        side * (tmp[y > 0 ? i - width : i] + tmp[y < height - 1 ? i + width : i]);
    }
  }
  return out;
}

/**
 * Lateral view: body profile with the spine posterior (image right), heart anterior-inferior,
 * lungs across, diaphragm sloping down posteriorly, effusion in the posterior sulcus.
 */
export function renderLateral(scene: Scene, width: number, height = width): GrayImage {
  const { anatomy: a, acquisition: q, findings: f } = scene;
  const rng = new Rng(q.textureSeed ^ 0x5bd1e995);
  const n1 = new ValueNoise(rng, 12);
  const c = canvasFor(q, width, height);
  const aa = 1.2 * c.pitch, inv = 1 / aa;
  const dome = 0.5 * (a.domeRight + a.domeLeft) + q.inspiration;
  const depthW = 0.72 * a.bodyW;
  const eff = Math.max(f.effusionLeft, f.effusionRight);
  const hs = f.ctr / 0.45;
  for (let j = 0; j < c.h; j++) {
    const Y = c.y0 + j * c.pitch;
    const bw = depthW * (0.55 + 0.45 * clamp01(Y / 0.18));
    const front = -bw + 0.05, back = bw - 0.1;
    for (let i = 0; i < c.w; i++) {
      const X = c.x0 + i * c.pitch;
      const inBody = clamp01(0.5 + (bw - Math.abs(X)) * inv);
      if (inBody <= 0) continue;
      const xr = X / bw;
      let d = 1.5 * a.softDensity * inBody * Math.sqrt(clamp01(1 - xr * xr));
      const dd = (X + 0.2) / 0.45, dy = dome - 0.04 + 0.1 * dd * dd;
      d += 0.5 * clamp01(0.5 + (Y - dy) * inv) * inBody;
      const lung = clamp01(0.5 + (X - front) * inv) * clamp01(0.5 + (back - X) * inv) *
        clamp01(0.5 + (dy - Y) * inv) * clamp01(0.5 + (Y - a.lungTop) * inv);
      d -= lung * a.lungAir * (0.95 + 0.1 * n1.at(X + 0.5, Y));
      const hx = (X + 0.08) / (0.16 * hs), hy = (Y - dome + 0.09) / 0.12;
      const hr = Math.sqrt(hx * hx + hy * hy);
      d += 0.7 * clamp01(0.5 + (1 - hr) * 0.12 * inv);
      d += 0.5 * clamp01(0.5 + (0.045 - Math.abs(X - back - 0.04)) * inv) *
        (0.75 + 0.25 * Math.cos((2 * Math.PI * Y) / a.ribSpacing));
      if (eff > 0) {
        const t = clamp01(X / back);
        const surf = dy + 0.02 - (0.02 + 0.15 * eff) * t * t;
        d += 0.6 * lung * clamp01((Y - surf) / 0.01) * (0.6 + 0.4 * eff);
      }
      c.data[j * c.w + i] = d;
    }
  }
  return expose(warp(c, q, width, height), width, height, q, rng);
}
