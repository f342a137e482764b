/** Backbone names accepted on the command line, mapped to the model constructors. */
import type { Backend } from "../model/backend.ts";
import type { ClassifierNet, NetOptions } from "../model/classifier.ts";
import { resnet18, resnet34, resnet50 } from "../model/resnet.ts";
import { densenet121 } from "../model/densenet.ts";
import { UserError } from "../util/user_error.ts";

/** The backbones the trainers build, by torchvision name. */
export const BACKBONES = ["resnet18", "resnet34", "resnet50", "densenet121"] as const;
/** One of BACKBONES. */
export type BackboneName = typeof BACKBONES[number];

/** The name as a BackboneName, or a UserError naming the choices. */
export function checkBackbone(name: string): BackboneName {
  if (!(BACKBONES as readonly string[]).includes(name)) {
    throw new UserError(`unknown backbone "${name}": choose one of ${BACKBONES.join(", ")}`);
  }
  return name as BackboneName;
}

/** Builds a backbone by name on backend B. */
export function buildBackbone(B: Backend, name: BackboneName, o: NetOptions): ClassifierNet {
  switch (name) {
    case "resnet18":
      return resnet18(B, o);
    case "resnet34":
      return resnet34(B, o);
    case "resnet50":
      return resnet50(B, o);
    case "densenet121":
      return densenet121(B, o);
  }
}
