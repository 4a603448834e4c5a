import { Schema } from "effect"
import { VmState } from "../vms/Domain.js"

export const Dimension = Schema.Literal("application", "environment", "stack", "osVersion", "state")
export type Dimension = typeof Dimension.Type
export const allDimensions: ReadonlyArray<Dimension> = ["application", "environment", "stack", "osVersion", "state"]

/** `groupBy=application,osVersion`: a comma-separated list of dimensions, each at most once. */
export const GroupBy = Schema.transform(
  Schema.String.pipe(Schema.maxLength(200)),
  Schema.Array(Dimension).pipe(
    Schema.filter((dimensions) => new Set(dimensions).size === dimensions.length || "expected each dimension at most once")
  ),
  {
    strict: true,
    decode: (text) => text.split(",").map((part) => part.trim()).filter((part) => part !== "") as Array<Dimension>,
    encode: (dimensions) => dimensions.join(",")
  }
)

export class InventoryGroup extends Schema.Class<InventoryGroup>("InventoryGroup")({
  application: Schema.optional(Schema.String),
  environment: Schema.optional(Schema.String),
  stack: Schema.optional(Schema.String),
  osVersion: Schema.optional(Schema.String),
  state: Schema.optional(VmState),
  count: Schema.Int
}) {}

export class Inventory extends Schema.Class<Inventory>("Inventory")({
  groupBy: Schema.Array(Dimension),
  total: Schema.Int,
  groups: Schema.Array(InventoryGroup)
}) {}
