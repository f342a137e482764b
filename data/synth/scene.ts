/**
 * Random scene parameters for the synthetic radiograph generator: a patient's anatomy (fixed
 * across that patient's studies), each study's acquisition (position, rotation, exposure, noise)
 * and findings with severities. Anatomy varies widely; acquisition moderately (one department's
 * protocol); findings are local (lung bases, heart border), of varied size and contrast, and
 * common enough to be among the main differences between images, as in CheXpert's inpatients.
 * Why: contrastive pretraining learns what tells images apart. With generator v2 exposure and
 * framing did, and MoCo features probed worse than random ones; v3's narrower acquisition and
 * larger, commoner effusions were chosen by tools/probe_representation.ts (numbers in README).
 * Coordinates: X horizontal in [-0.5, 0.5] (negative = image left = patient's right), Y down in
 * [0, 1], both as fractions of the image side.
 */
import type { Rng } from "../../util/rng.ts";

export interface Anatomy {
  sex: "Male" | "Female";
  age: number;
  /** Torso half-width at the chest and at the neck. */
  bodyW: number;
  neckW: number;
  /** Inner rib-cage half-width (the thoracic width of the cardiothoracic ratio is 2·thoraxW). */
  thoraxW: number;
  lungTop: number;
  /** Diaphragm dome tops, patient right (image left) and left. */
  domeRight: number;
  domeLeft: number;
  domeH: number;
  /** Baseline cardiothoracic ratio (heart width / thoracic width). */
  ctr: number;
  mediastinumW: number;
  softDensity: number;
  lungAir: number;
  ribSpacing: number;
  ribThick: number;
  clavicleY: number;
  ribDensity: number;
  /** Gap between chest wall and arm (large = arm outside the field). */
  armGap: number;
  /** Breast shadow density (0 for men). */
  breast: number;
  gastricBubble: number;
}

export interface Acquisition {
  /** "PA" or "AP" (AP magnifies the heart ~8%, a realistic confounder). */
  projection: "PA" | "AP";
  shiftX: number;
  shiftY: number;
  scale: number;
  /** Radians. */
  rotation: number;
  /** Attenuation scale, gamma and output gain/bias of the detector curve. */
  exposure: number;
  gamma: number;
  gain: number;
  bias: number;
  noise: number;
  blur: number;
  /** Inspiration: shifts the diaphragm (fraction of the image). */
  inspiration: number;
  /** Seed for the per-image textures (lung markings, noise). */
  textureSeed: number;
}

export interface Blob {
  x: number;
  y: number;
  r: number;
  density: number;
}

export interface Findings {
  /** Effusion severity per side, 0 = none, else in (0, 1]. Right = patient right = image left. */
  effusionRight: number;
  effusionLeft: number;
  /** Cardiothoracic ratio of this study (> 0.5 = cardiomegaly). */
  ctr: number;
  /** Perihilar haze severity, 0 = none. */
  edema: number;
  consolidation: Blob[];
  /** Plate-like band: centre, angle (rad), half-length, density; or null. */
  atelectasis: { x: number; y: number; angle: number; len: number; density: number } | null;
  nodule: Blob | null;
  /** Pneumothorax: side (-1 right, +1 left) and size in (0, 1]; 0 size = none. */
  pneumothorax: { side: number; size: number } | null;
  devices: boolean;
  /** Tuberculosis (Shenzhen-style): upper-zone opacities, optional cavity. */
  tb: { blobs: Blob[]; cavity: Blob | null } | null;
}

export interface Scene {
  anatomy: Anatomy;
  acquisition: Acquisition;
  findings: Findings;
}

const u = (rng: Rng, a: number, b: number) => a + (b - a) * rng.uniform();
const clamp = (v: number, a: number, b: number) => Math.min(b, Math.max(a, v));

export function sampleAnatomy(rng: Rng, sex?: "Male" | "Female"): Anatomy {
  const s = sex ?? (rng.uniform() < 0.55 ? "Male" : "Female");
  const bodyW = u(rng, 0.4, 0.475) * (s === "Male" ? 1 : 0.97);
  const thoraxW = bodyW - u(rng, 0.045, 0.075);
  const lungTop = u(rng, 0.1, 0.17);
  const domeRight = u(rng, 0.68, 0.78);
  const lungH = domeRight - lungTop;
  // Heart sizes: mostly normal, a minority with chronic cardiomegaly.
  // Cardiothoracic ratios overlap around the 0.5 threshold, so borderline hearts are common.
  const enlarged = rng.uniform() < 0.15;
  const ctr = enlarged ? u(rng, 0.49, 0.62) : clamp(0.45 + 0.04 * rng.normal(), 0.36, 0.55);
  return {
    sex: s,
    age: Math.round(clamp(60 + 17 * rng.normal(), 18, 95)),
    bodyW,
    neckW: u(rng, 0.1, 0.14),
    thoraxW,
    lungTop,
    domeRight,
    domeLeft: domeRight + u(rng, 0.005, 0.035),
    domeH: u(rng, 0.065, 0.1),
    ctr,
    mediastinumW: u(rng, 0.055, 0.075),
    softDensity: u(rng, 0.95, 1.15),
    lungAir: u(rng, 0.66, 0.79),
    ribSpacing: lungH / u(rng, 8.5, 10),
    ribThick: u(rng, 0.3, 0.42),
    clavicleY: lungTop + u(rng, 0.0, 0.05),
    ribDensity: u(rng, 0.06, 0.13),
    armGap: rng.uniform() < 0.6 ? u(rng, 0.005, 0.04) : 0.3,
    breast: s === "Female" ? u(rng, 0.1, 0.3) : 0,
    gastricBubble: rng.uniform() < 0.6 ? u(rng, 0.5, 1) : 0,
  };
}

export function sampleAcquisition(rng: Rng): Acquisition {
  return {
    projection: rng.uniform() < 0.4 ? "AP" : "PA",
    shiftX: 0.015 * rng.normal(),
    shiftY: 0.0125 * rng.normal(),
    scale: u(rng, 0.945, 1.035),
    rotation: (clamp(1.25 * rng.normal(), -3.5, 3.5) * Math.PI) / 180,
    exposure: u(rng, 1.11, 1.29),
    gamma: u(rng, 0.94, 1.1),
    gain: u(rng, 0.94, 1.01),
    bias: u(rng, -0.018, 0.018),
    noise: u(rng, 0.006, 0.025),
    blur: rng.uniform() < 0.5 ? u(rng, 0, 1) : 0,
    inspiration: 0.02 * rng.normal(),
    textureSeed: rng.nextU32(),
  };
}

/** Severity uniform in [0.15, 1]: from a blunted angle to a large effusion. */
function severity(rng: Rng): number {
  return u(rng, 0.15, 1);
}

function lungPoint(rng: Rng, a: Anatomy, side: number, yLo: number, yHi: number) {
  const y = a.lungTop + (a.domeRight - a.lungTop) * u(rng, yLo, yHi);
  const x = side * a.thoraxW * u(rng, 0.35, 0.8);
  return { x, y };
}

/** Patient-level state carried from one study to the next (chronic findings persist). */
export interface History {
  effusionRight: number;
  effusionLeft: number;
}

export function sampleFindings(
  rng: Rng,
  a: Anatomy,
  prev: History | null,
  opts: { tb?: boolean } = {},
): Findings {
  const enlarged = a.ctr > 0.5;
  // Effusion: ~40% of studies (CheXpert's training set has ~40% positive or uncertain); more
  // with an enlarged heart; tends to persist between studies.
  let pEff = enlarged ? 0.63 : 0.34;
  if (prev && (prev.effusionLeft > 0 || prev.effusionRight > 0)) pEff = 0.6;
  let effusionRight = 0, effusionLeft = 0;
  if (rng.uniform() < pEff) {
    const r = rng.uniform();
    if (r < 0.4) effusionRight = severity(rng);
    else if (r < 0.7) effusionLeft = severity(rng);
    else {
      effusionRight = severity(rng);
      effusionLeft = severity(rng);
    }
  }
  const ctr = clamp(a.ctr + 0.012 * rng.normal(), 0.33, 0.7);
  const edema =
    rng.uniform() < (enlarged ? 0.25 : 0.07) + (effusionLeft + effusionRight > 0 ? 0.08 : 0)
      ? severity(rng)
      : 0;
  const consolidation: Blob[] = [];
  if (rng.uniform() < 0.1) {
    const k = 1 + rng.int(2);
    const side = rng.uniform() < 0.5 ? -1 : 1;
    for (let i = 0; i < k; i++) {
      const p = lungPoint(rng, a, side, 0.35, 0.85);
      consolidation.push({ ...p, r: u(rng, 0.035, 0.09), density: u(rng, 0.25, 0.6) });
    }
  }
  let atelectasis: Findings["atelectasis"] = null;
  if (rng.uniform() < 0.12) {
    const p = lungPoint(rng, a, rng.uniform() < 0.5 ? -1 : 1, 0.6, 0.85);
    atelectasis = {
      ...p,
      angle: u(rng, -0.3, 0.3),
      len: u(rng, 0.04, 0.09),
      density: u(rng, 0.25, 0.5),
    };
  }
  const nodule = rng.uniform() < 0.05
    ? {
      ...lungPoint(rng, a, rng.uniform() < 0.5 ? -1 : 1, 0.15, 0.7),
      r: u(rng, 0.012, 0.025),
      density: u(rng, 0.3, 0.6),
    }
    : null;
  const pneumothorax = rng.uniform() < 0.04
    ? { side: rng.uniform() < 0.5 ? -1 : 1, size: severity(rng) }
    : null;
  const devices = rng.uniform() < 0.075 + (edema > 0 ? 0.15 : 0);
  let tb: Findings["tb"] = null;
  if (opts.tb) {
    const blobs: Blob[] = [];
    const sides = rng.uniform() < 0.4 ? [-1, 1] : [rng.uniform() < 0.5 ? -1 : 1];
    for (const side of sides) {
      for (let i = 0, k = 1 + rng.int(3); i < k; i++) {
        const p = lungPoint(rng, a, side, 0.05, 0.4);
        blobs.push({ ...p, r: u(rng, 0.025, 0.07), density: u(rng, 0.2, 0.55) });
      }
    }
    const cavity = rng.uniform() < 0.3 ? { ...blobs[0], r: blobs[0].r * 0.55 } : null;
    tb = { blobs, cavity };
  }
  return {
    effusionRight,
    effusionLeft,
    ctr,
    edema,
    consolidation,
    atelectasis,
    nodule,
    pneumothorax,
    devices,
    tb,
  };
}

/** Ground-truth CheXpert observations of a scene (1 present, 0 absent, null = not modelled). */
export function sceneLabels(f: Findings): { [obs: string]: number | null } {
  const eff = f.effusionLeft > 0 || f.effusionRight > 0;
  const cardio = f.ctr > 0.5;
  const opacity = f.edema > 0 || f.consolidation.length > 0 || f.atelectasis !== null ||
    f.tb !== null;
  const lesion = f.nodule !== null;
  const ptx = f.pneumothorax !== null;
  const any = eff || cardio || opacity || lesion || ptx;
  const b = (v: boolean) => (v ? 1 : 0);
  return {
    "No Finding": b(!any),
    "Enlarged Cardiomediastinum": b(cardio),
    "Cardiomegaly": b(cardio),
    "Lung Opacity": b(opacity),
    "Lung Lesion": b(lesion),
    "Edema": b(f.edema > 0),
    "Consolidation": b(f.consolidation.length > 0),
    "Pneumonia": null,
    "Atelectasis": b(f.atelectasis !== null),
    "Pneumothorax": b(ptx),
    "Pleural Effusion": b(eff),
    "Pleural Other": null,
    "Fracture": null,
    "Support Devices": b(f.devices),
  };
}

/** How subtle each present finding is (0 obvious … 1 barely visible), for uncertain labels. */
export function sceneSubtlety(f: Findings): { [obs: string]: number } {
  const eff = Math.max(f.effusionLeft, f.effusionRight);
  return {
    "Pleural Effusion": eff > 0 ? 1 - eff : 0,
    "Cardiomegaly": f.ctr > 0.5 ? clamp(1 - (f.ctr - 0.5) / 0.08, 0, 1) : 0,
    "Enlarged Cardiomediastinum": f.ctr > 0.5 ? clamp(1 - (f.ctr - 0.5) / 0.08, 0, 1) : 0,
    "Edema": f.edema > 0 ? 1 - f.edema : 0,
    "Consolidation": f.consolidation.length ? 0.5 : 0,
    "Atelectasis": f.atelectasis ? 0.6 : 0,
    "Lung Opacity": 0.3,
    "Lung Lesion": 0.4,
    "Pneumothorax": f.pneumothorax ? 1 - f.pneumothorax.size : 0,
  };
}
