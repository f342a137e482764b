/**
 * The data layer's error for problems in the user's dataset (missing folder, malformed CSV, a
 * path that leaves the root, too many bad rows or images). Its message is the whole story, so
 * the tasks print it alone, without a stack trace.
 */
import { UserError } from "../util/user_error.ts";

export class DataError extends UserError {
  override name = "DataError";
}

/** The share of bad images was over the tolerated fraction (--max-bad). */
export class TooManyBadImagesError extends DataError {
  override name = "TooManyBadImagesError";
}

/** A dataset kind the loaders do not know. */
export class UnknownDatasetKindError extends DataError {
  override name = "UnknownDatasetKindError";
  constructor(readonly kind: string, readonly kinds: readonly string[]) {
    super(`unknown dataset kind "${kind}": choose one of ${kinds.join(", ")}`);
  }
}

/** A task (label) the dataset does not have (--task on a layout with fixed labels). */
export class UnknownTaskError extends DataError {
  override name = "UnknownTaskError";
  constructor(
    readonly missing: readonly string[],
    readonly tasks: readonly string[],
    readonly root: string,
  ) {
    super(
      `${root}: no label ${missing.map((m) => `"${m}"`).join(", ")}; its labels: ${
        tasks.join(", ")
      }`,
    );
  }
}
