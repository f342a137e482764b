/**
 * Synthetic datasets in the real on-disk layouts, so the default run goes through the same
 * loaders as real data:
 *  - CheXpert: CheXpert-v1.0-small/{train,valid}.csv and {train,valid}/patientNNNNN/studyN/
 *    view1_frontal.jpg (+ some view2_lateral.jpg); patients with several studies; train labels
 *    with uncertain (-1.0) and blank entries like the real set, valid labels all 0/1.
 *  - Shenzhen: CXR_png/CHNCXR_####_0|1.png and ClinicalReadings/*.txt.
 * Everything is a pure function of (seed, patient index), so any split of the patients across
 * workers produces identical bytes.
 */
import { Rng } from "../../util/rng.ts";
import { CHEXPERT_OBSERVATIONS } from "../chexpert.ts";
import { encodeJpegGray } from "../jpeg.ts";
import { encodePngGray } from "../png_encode.ts";
import { renderFrontal, renderLateral } from "./render.ts";
import {
  type Findings,
  type History,
  sampleAcquisition,
  sampleAnatomy,
  sampleFindings,
  sceneLabels,
  sceneSubtlety,
} from "./scene.ts";

/** Bump when the generator's output changes, so cached datasets are regenerated. */
export const SYNTH_VERSION = 3;

export interface SynthChexpertOptions {
  /** Frontal images in all (train + valid). Default 2000. */
  n?: number;
  /** Image width in pixels (height is 1–1.2× that, portrait like CheXpert). Default 128. */
  size?: number;
  seed?: number;
  /** JPEG quality. Default 90. */
  quality?: number;
  /** Share of patients in valid.csv. Default 0.12. */
  validFraction?: number;
  /** Share of studies that also have a lateral view. Default 0.15. */
  lateralFraction?: number;
}

export interface PatientPlan {
  index: number;
  /** "patient00001" (train) or "patient64541"+ (valid, like the real set). */
  id: string;
  split: "train" | "valid";
  studies: number;
}

export function chexpertDefaults(o: SynthChexpertOptions): Required<SynthChexpertOptions> {
  return {
    n: o.n ?? 2000,
    size: o.size ?? 128,
    seed: o.seed ?? 0,
    quality: o.quality ?? 90,
    validFraction: o.validFraction ?? 0.12,
    lateralFraction: o.lateralFraction ?? 0.15,
  };
}

/** Independent generator per (seed, stream, index): order of generation does not matter. */
function streamRng(seed: number, stream: number, index: number): Rng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f) ^ Math.imul(index + 1, 0x165667b1);
  return new Rng((h ^ (h >>> 16)) >>> 0);
}

/** Patients and their study counts, until the frontal images add up to n exactly. */
export function planChexpert(opts: SynthChexpertOptions): PatientPlan[] {
  const o = chexpertDefaults(opts);
  if (!(o.n >= 2)) throw new Error(`synthetic CheXpert: n must be at least 2, got ${o.n}`);
  const plan: PatientPlan[] = [];
  let total = 0, nTrain = 0, nValid = 0;
  for (let p = 0; total < o.n; p++) {
    const rng = streamRng(o.seed, 0, p);
    // The first two patients pin both splits, so even tiny sets have a valid.csv.
    const valid = p === 1 || (p > 1 && rng.uniform() < o.validFraction);
    let studies = 1;
    if (!valid) { while (studies < 5 && rng.uniform() < 0.45) studies++; }
    studies = Math.min(studies, o.n - total);
    const id = valid
      ? `patient${String(64541 + nValid++).padStart(5, "0")}`
      : `patient${String(1 + nTrain++).padStart(5, "0")}`;
    plan.push({ index: p, id, split: valid ? "valid" : "train", studies });
    total += studies;
  }
  return plan;
}

export const CHEXPERT_HEADER = [
  "Path",
  "Sex",
  "Age",
  "Frontal/Lateral",
  "AP/PA",
  ...CHEXPERT_OBSERVATIONS,
];

export interface RenderedFile {
  /** Path relative to the dataset folder's parent (as written in the CSV). */
  rel: string;
  bytes: Uint8Array;
}

export interface RenderedPatient {
  split: "train" | "valid";
  files: RenderedFile[];
  /** CSV lines (no newline). */
  rows: string[];
  /** Ground truth of each frontal image: rel path and the true 0/1 labels. */
  truth: { rel: string; labels: { [obs: string]: number | null }; findings: Findings }[];
}

/** How a train-CSV cell is written for a true label: 1.0 / -1.0 / 0.0 / blank, like CheXpert. */
function trainCell(rng: Rng, truth: number | null, subtle: number): string {
  if (truth === null) return rng.uniform() < 0.02 ? "0.0" : "";
  if (truth === 1) return rng.uniform() < 0.05 + 0.35 * subtle ? "-1.0" : "1.0";
  const r = rng.uniform();
  return r < 0.03 ? "-1.0" : r < 0.3 ? "0.0" : "";
}

/** Renders all studies of one patient: images (encoded) and CSV rows. */
export function renderChexpertPatient(
  p: PatientPlan,
  opts: SynthChexpertOptions,
): RenderedPatient {
  const o = chexpertDefaults(opts);
  const rng = streamRng(o.seed, 1, p.index);
  const anatomy = sampleAnatomy(rng);
  const out: RenderedPatient = { split: p.split, files: [], rows: [], truth: [] };
  let history: History | null = null;
  for (let s = 1; s <= p.studies; s++) {
    const acquisition = sampleAcquisition(rng);
    const findings = sampleFindings(rng, anatomy, history);
    history = { effusionLeft: findings.effusionLeft, effusionRight: findings.effusionRight };
    const scene = { anatomy, acquisition, findings };
    const height = Math.round(o.size * (1 + 0.2 * rng.uniform()));
    const labels = sceneLabels(findings), subtle = sceneSubtlety(findings);
    const age = Math.min(90, anatomy.age + s - 1);
    const dir = `CheXpert-v1.0-small/${p.split}/${p.id}/study${s}`;
    const views: [string, "Frontal" | "Lateral"][] = [["view1_frontal.jpg", "Frontal"]];
    if (rng.uniform() < o.lateralFraction) views.push(["view2_lateral.jpg", "Lateral"]);
    for (const [name, view] of views) {
      const img = view === "Frontal"
        ? renderFrontal(scene, o.size, height)
        : renderLateral(scene, o.size, height);
      const rel = `${dir}/${name}`;
      out.files.push({ rel, bytes: encodeJpegGray(img, o.quality) });
      const cells = CHEXPERT_OBSERVATIONS.map((obs) => {
        const t = labels[obs];
        if (p.split === "valid") return t === 1 ? "1.0" : "0.0";
        return trainCell(rng, t, subtle[obs] ?? 0.5);
      });
      const proj = view === "Frontal" ? acquisition.projection : "";
      out.rows.push([rel, anatomy.sex, String(age), view, proj, ...cells].join(","));
      if (view === "Frontal") out.truth.push({ rel, labels, findings });
    }
  }
  return out;
}

export interface SynthShenzhenOptions {
  /** Images in all (about half TB). Default 600. */
  n?: number;
  size?: number;
  seed?: number;
}

export function shenzhenDefaults(o: SynthShenzhenOptions): Required<SynthShenzhenOptions> {
  return { n: o.n ?? 600, size: o.size ?? 128, seed: o.seed ?? 0 };
}

function zone(x: number, y: number): string {
  const side = x < 0 ? "right" : "left"; // patient side (image left = patient right)
  return `${side} ${y < 0.3 ? "upper" : y < 0.45 ? "middle" : "lower"} field`;
}

/** One Shenzhen image: CHNCXR_####_label.png (number 1-based) and its clinical reading. */
export function renderShenzhenImage(
  index: number,
  opts: SynthShenzhenOptions,
): { name: string; png: Uint8Array; reading: string; label: number } {
  const o = shenzhenDefaults(opts);
  const nNormal = Math.ceil(o.n / 2);
  const label = index < nNormal ? 0 : 1;
  const rng = streamRng(o.seed, 2, index);
  const anatomy = sampleAnatomy(rng);
  const acquisition = { ...sampleAcquisition(rng), projection: "PA" as const };
  const findings = sampleFindings(rng, anatomy, null, { tb: label === 1 });
  findings.devices = false;
  if (!(label === 1 && rng.uniform() < 0.2)) {
    findings.effusionLeft = 0;
    findings.effusionRight = 0;
  }
  const height = Math.round(o.size * (0.95 + 0.1 * rng.uniform()));
  const img = renderFrontal({ anatomy, acquisition, findings }, o.size, height);
  const name = `CHNCXR_${String(index + 1).padStart(4, "0")}_${label}`;
  let reading = "normal";
  if (findings.tb) {
    const where = [...new Set(findings.tb.blobs.map((b) => zone(b.x, b.y)))].join(" and ");
    reading = `PTB in the ${where}${findings.tb.cavity ? " with cavitation" : ""}` +
      (findings.effusionLeft + findings.effusionRight > 0 ? ", pleural effusion" : "");
  }
  return {
    name,
    png: encodePngGray(img),
    reading: `${anatomy.sex.toLowerCase()} ${anatomy.age}yrs\n${reading}\n`,
    label,
  };
}
