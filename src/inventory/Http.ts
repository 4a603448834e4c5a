import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { applicationGlobs, authorizeApplication, requireScope } from "../auth/Authorization.js"
import { FleetApi } from "../http/Api.js"
import { allDimensions, Inventory } from "./Domain.js"
import { InventoryRepo } from "./Repo.js"

export const InventoryHttp = HttpApiBuilder.group(FleetApi, "inventory", (handlers) =>
  Effect.gen(function* () {
    const repo = yield* InventoryRepo
    return handlers.handle("inventory", ({ urlParams }) =>
      Effect.gen(function* () {
        const caller = yield* requireScope("vms:read")
        if (urlParams.application !== undefined) yield* authorizeApplication(urlParams.application)
        const { groupBy = allDimensions, includeDecommissioned = false, ...filter } = urlParams
        const groups = yield* repo.counts(groupBy, { ...filter, applicationGlobs: applicationGlobs(caller) }, includeDecommissioned)
        return new Inventory({ groupBy, total: groups.reduce((sum, group) => sum + group.count, 0), groups })
      }))
  }))
