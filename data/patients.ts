/**
 * Patient identity where a dataset gives none: label fractions and splits are drawn by patient,
 * so two images of one person must share an id. From a file name (NIH's "00000005_001.png" →
 * "00000005", else the stem), from the folders when file names repeat across folders (MIMIC- or
 * CheXpert-like `p1/s1/view1_frontal.png`), or from a user's pattern over the path.
 */
import { basename, dirname, relative } from "node:path";
import { DataError } from "./data_error.ts";
import type { DataRecord } from "./types.ts";

/**
 * Patient id from a file name: NIH's "00000005_001.png" → "00000005", else the stem (or the
 * first group of `pattern` over the stem, where it matches).
 */
export function patientFromFileName(name: string, pattern?: RegExp): string {
  const stem = stemOf(name);
  const m = stem.match(pattern ?? /^(\d+)_\d+$/);
  return m ? (m[1] ?? m[0]) : stem;
}

function stemOf(path: string): string {
  return basename(path).replace(/\.[^.]+$/, "");
}

/** A study folder's name (MIMIC's s50414267, CheXpert's study1): the patient is the one above. */
const STUDY_DIR = /^(s|study)[-_]?\d+$/i;

/**
 * Patient ids for paths relative to the dataset root (forward slashes), when nothing names the
 * patient. The file name is the id (patientFromFileName) unless the file names do not tell images
 * apart: when a name repeats across folders and there are fewer distinct names than folders (view
 * names such as `p1/s1/view1_frontal.png`), the id is the folder path, less a last study folder
 * (`s1`, `study2`) so a patient's studies stay together. In flat folders, or class folders whose
 * file names are their own (even if a few collide), the file name stays the id.
 */
export function patientsFromPaths(rels: string[]): { patients: string[]; rule: "file" | "folder" } {
  const dirsOf = new Map<string, Set<string>>(); // stem → folders it appears in
  const dirs = new Set<string>();
  for (const r of rels) {
    const d = dirname(r), s = stemOf(r);
    dirs.add(d);
    if (!dirsOf.has(s)) dirsOf.set(s, new Set());
    dirsOf.get(s)!.add(d);
  }
  const repeats = [...dirsOf.values()].some((d) => d.size > 1);
  if (!(repeats && dirsOf.size < dirs.size)) {
    return { patients: rels.map((r) => patientFromFileName(r)), rule: "file" };
  }
  return {
    patients: rels.map((r) => {
      const d = dirname(r);
      if (d === ".") return patientFromFileName(r);
      const up = dirname(d);
      return STUDY_DIR.test(basename(d)) && up !== "." ? up : d;
    }),
    rule: "folder",
  };
}

/** The warning a loader prints when every image ended up its own patient (null otherwise). */
export function onePatientPerImage(
  records: DataRecord[],
  why: string,
  remedy = "add a patient column or --patient-pattern",
): string | null {
  if (records.length < 2) return null;
  if (new Set(records.map((r) => r.patient)).size < records.length) return null;
  return `${why}: each image is its own patient; label fractions and splits cannot keep a ` +
    `patient's images together — ${remedy}`;
}

/** A patient pattern that matches none of a dataset's images. */
export class PatientPatternError extends DataError {
  override name = "PatientPatternError";
  constructor(readonly pattern: RegExp, readonly detail: string) {
    super(`patient pattern ${pattern.source}: ${detail}`);
  }
}

/**
 * Sets each record's patient from a regular expression: its first capture group that matched (the
 * whole match when it has none), tried on the image's path relative to `root` (forward slashes),
 * then on its file name, so `^(person\d+)_` works on file names and `^(p\d+)/` on folders. Images
 * it does not match keep their patient; the count is returned. Throws PatientPatternError when it
 * matches no image.
 */
export function applyPatientPattern(
  records: DataRecord[],
  root: string,
  pattern: RegExp,
): { matched: number; firstUnmatched?: string } {
  // A global or sticky pattern would carry lastIndex from one image to the next.
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ""));
  let matched = 0, firstUnmatched: string | undefined;
  const ids: (string | null)[] = records.map((r) => {
    const rel = relative(root, r.path).replaceAll("\\", "/");
    const id = idFrom(re.exec(rel)) ?? idFrom(re.exec(basename(rel)));
    if (id === null) firstUnmatched ??= rel;
    return id;
  });
  ids.forEach((id, i) => {
    if (id !== null) {
      records[i].patient = id;
      matched++;
    }
  });
  if (matched === 0 && records.length > 0) {
    throw new PatientPatternError(
      pattern,
      `matches none of the ${records.length} images (tried on their paths relative to ${root}, ` +
        `e.g. "${firstUnmatched}", and on their file names)`,
    );
  }
  return { matched, firstUnmatched };
}

function idFrom(m: RegExpExecArray | null): string | null {
  if (!m) return null;
  const id = m.length > 1 ? m.slice(1).find((g) => g !== undefined && g !== "") : m[0];
  return id ? id : null;
}

/**
 * Applies a patient pattern to a loaded dataset's records; returns the warning line for images
 * it left unmatched (null when it matched them all).
 */
export function patientPatternOver(
  records: DataRecord[],
  root: string,
  pattern: RegExp,
): string | null {
  const { matched, firstUnmatched } = applyPatientPattern(records, root, pattern);
  if (matched === records.length) return null;
  return `patient pattern ${pattern.source} matched ${matched} of ${records.length} images; the ` +
    `other ${records.length - matched} keep the loader's patient id (first: "${firstUnmatched}")`;
}
