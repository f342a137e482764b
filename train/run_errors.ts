/**
 * Why a training run stopped, when the user can act on it: typed so that the commands can say
 * which flag to change (cli/explain.ts); the messages here name no flag. Each keeps `facts`
 * (what happened) apart from its advice, which the command line rewords.
 */
import { UserError } from "../util/user_error.ts";

/** A run folder resumed with other data than its saved run was made on. */
export class OtherDataError extends UserError {
  override name = "OtherDataError";
  /**
   * @param facts what differs, e.g. "runs/x/checkpoint.safetensors was trained on another
   *   dataset (…)"
   * @param record the file that records the run's data (its config.json or run.json)
   */
  constructor(readonly facts: string, readonly record: string) {
    super(`${facts}; resume with the same data as ${record} records, or start a new run folder.`);
  }
}

/** A run folder resumed with other settings than its saved run was made with. */
export class OtherSettingsError extends UserError {
  override name = "OtherSettingsError";
  /** @param record the file that records the run's settings */
  constructor(readonly facts: string, readonly record: string) {
    super(`${facts}; resume with the same settings (see ${record}), or start a new run folder.`);
  }
}

/** Training produced a non-finite loss or weights and stopped before saving them. */
export class TrainingDivergedError extends UserError {
  override name = "TrainingDivergedError";
  /**
   * @param facts what became non-finite, at which step, and the last good checkpoint
   * @param resumable whether the run can resume from a checkpoint (pretraining) or not (a cell)
   * @param beforeAnyUpdate the loss of a run's first step, computed before any update
   */
  constructor(
    readonly facts: string,
    readonly resumable = true,
    /** at a run's first step, before any update: the learning rate cannot be the cause */
    readonly beforeAnyUpdate = false,
  ) {
    super(
      beforeAnyUpdate
        ? `${facts} No update had run yet, so the learning rate is not the cause: check the ` +
          `input data and the initial weights.`
        : `${facts} Lower the learning rate or check the input data` +
          (resumable ? `, or resume from that checkpoint.` : `.`),
    );
  }
}

/** A checkpoint file that cannot be read back (cut short, overwritten). */
export class DamagedCheckpointError extends UserError {
  override name = "DamagedCheckpointError";
  constructor(readonly path: string, readonly detail: string) {
    super(
      `checkpoint ${path} is damaged (${detail}); restore it from a copy, or start a new run ` +
        `folder`,
    );
  }
}

/** The ImageNet initialisation was asked for without ImageNet weights to load. */
export class MissingImagenetWeightsError extends UserError {
  override name = "MissingImagenetWeightsError";
  constructor() {
    super("the imagenet init needs torchvision ImageNet weights (a safetensors file)");
  }
}

/** A weights file whose tensors do not fit the chosen backbone. */
export class BackboneMismatchError extends UserError {
  override name = "BackboneMismatchError";
  /** @param facts which keys are missing or mismatched */
  constructor(readonly facts: string) {
    super(`${facts}. Check the backbone against the file.`);
  }
}

/** An experiment configuration whose parts contradict each other (the facts name which). */
export class ConflictingSettingsError extends UserError {
  override name = "ConflictingSettingsError";
  /**
   * @param conflict which settings: "backbone-and-seeds" (a given MoCo backbone with several
   *   pretraining seeds), "e2e-fraction" (an end-to-end fraction outside the grid's) or
   *   "pretrain-test" (pretraining images that include test patients)
   * @param facts the values involved
   */
  constructor(
    readonly conflict: "backbone-and-seeds" | "e2e-fraction" | "pretrain-test",
    readonly facts: string,
  ) {
    super(facts);
  }
}
