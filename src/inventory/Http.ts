import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { FleetApi } from "../http/Api.js"
import { allDimensions, Inventory } from "./Domain.js"
import { InventoryRepo } from "./Repo.js"

export const InventoryHttp = HttpApiBuilder.group(FleetApi, "inventory", (handlers) =>
  Effect.gen(function* () {
    const repo = yield* InventoryRepo
    return handlers.handle("inventory", ({ urlParams }) =>
      Effect.gen(function* () {
        const { groupBy = allDimensions, includeDecommissioned = false, ...filter } = urlParams
        const groups = yield* repo.counts(groupBy, filter, includeDecommissioned)
        return new Inventory({ groupBy, total: groups.reduce((sum, group) => sum + group.count, 0), groups })
      }))
  }))
