/**
 * Shenzhen tuberculosis set: CHNCXR_####_0.png (normal) / CHNCXR_####_1.png (TB), in the root or
 * its CXR_png/ folder, with optional ClinicalReadings/CHNCXR_####_x.txt ("male 35yrs" then the
 * reading). Every image is its own patient (the set has one image per person).
 */
import { DataError } from "./data_error.ts";
import { basename, join, resolve } from "node:path";
import { exists, isDir, listDir } from "./paths.ts";
import type { DataRecord, Dataset } from "./types.ts";
import { patientPatternOver } from "./patients.ts";
import { rethrowIfDenied } from "../util/fs.ts";

export const SHENZHEN_TASK = "Tuberculosis";
const NAME = /^CHNCXR_(\d+)_([01])\.png$/i;

export interface ShenzhenOptions {
  root: string;
  /** Patient ids from the path instead of CHNCXR_#### (patients.ts applyPatientPattern). */
  patientPattern?: RegExp;
  /** No warnings printed. */
  quiet?: boolean;
}

/** The folder holding the CHNCXR_*.png files, or null. */
export async function findShenzhenImages(root: string): Promise<string | null> {
  for (const c of [root, join(root, "CXR_png"), join(root, "images")]) {
    if (!(await isDir(c))) continue;
    for await (const e of Deno.readDir(c)) if (e.isFile && NAME.test(e.name)) return c;
  }
  return null;
}

/**
 * Parses a clinical reading: first line "male 35yrs" (loosely: "female35yrs", "Male, 35 yrs",
 * "female 07month": months and days become fractional years), the rest is the finding.
 */
export function parseClinicalReading(
  text: string,
): { sex?: string; age?: number; reading: string } {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  const head = lines[0] ?? "";
  // A sex word not inside another word ("female35yrs" has a digit after it).
  const sexMatch = head.match(/(?:^|[^a-z])(female|male|f|m)(?![a-z])/i);
  const ageMatch = head.match(
    /(\d+(?:\.\d+)?)\s*(years?|yrs?|y|months?|mths?|mos?|days?|d)?(?![a-z])/i,
  );
  const sex = sexMatch
    ? (sexMatch[1].toLowerCase().startsWith("f") ? "Female" : "Male")
    : undefined;
  const hasHead = sexMatch !== null || ageMatch !== null;
  let age: number | undefined;
  if (ageMatch) {
    const n = Number(ageMatch[1]), unit = (ageMatch[2] ?? "y").toLowerCase();
    age = unit.startsWith("mo") ? n / 12 : unit.startsWith("d") ? n / 365 : n;
  }
  return {
    sex,
    age,
    reading: (hasHead ? lines.slice(1) : lines).join(" "),
  };
}

/**
 * A clinical reading's text; anything but a readable regular file (a folder, a named pipe whose
 * read would block forever) is a DataError naming it.
 */
async function readReading(txt: string): Promise<string> {
  try {
    const info = await Deno.stat(txt);
    if (!info.isFile) {
      throw new DataError(
        `${txt}: not a text file (${
          info.isDirectory ? "a folder" : "a pipe, socket or device"
        }); ` +
          `a clinical reading is a .txt file: move it out of ClinicalReadings/`,
      );
    }
    return await Deno.readTextFile(txt);
  } catch (e) {
    if (e instanceof DataError) throw e;
    rethrowIfDenied(e);
    throw new DataError(`${txt}: cannot read the clinical reading (${(e as Error).message})`);
  }
}

export async function loadShenzhen(opts: ShenzhenOptions): Promise<Dataset> {
  opts = { ...opts, root: resolve(opts.root) };
  const dir = await findShenzhenImages(opts.root);
  if (!dir) {
    throw new DataError(
      `${opts.root}: not a Shenzhen dataset: expected CHNCXR_####_0.png / CHNCXR_####_1.png ` +
        `files in it or in its CXR_png/ folder`,
    );
  }
  const readings = (await isDir(join(opts.root, "ClinicalReadings")))
    ? join(opts.root, "ClinicalReadings")
    : (await isDir(join(dir, "ClinicalReadings")))
    ? join(dir, "ClinicalReadings")
    : null;
  const records: DataRecord[] = [];
  let symlinks = 0; // never followed (one could lead out of the root): skipped and counted
  for (const e of await listDir(dir)) {
    if (e.isSymlink) symlinks++;
    const m = e.isFile ? e.name.match(NAME) : null;
    if (!m) continue;
    const label = Number(m[2]);
    const rec: DataRecord = {
      path: join(dir, e.name),
      patient: `CHNCXR_${m[1]}`,
      labels: Float32Array.of(label),
      mask: Float32Array.of(1),
    };
    const txt = readings ? join(readings, e.name.replace(/\.png$/i, ".txt")) : null;
    if (txt && await exists(txt)) {
      const r = parseClinicalReading(await readReading(txt));
      rec.meta = { sex: r.sex, age: r.age, reading: r.reading };
    }
    records.push(rec);
  }
  if (opts.patientPattern) {
    const w = patientPatternOver(records, dir, opts.patientPattern);
    if (w && !opts.quiet) console.warn(`warning: ${dir}: ${w}`);
  }
  return {
    name: basename(opts.root),
    kind: "shenzhen",
    root: dir,
    tasks: [SHENZHEN_TASK],
    records,
    badRows: [],
    skippedSymlinks: symlinks,
    labelSettings: opts.patientPattern ? { patientPattern: opts.patientPattern.source } : {},
  };
}
