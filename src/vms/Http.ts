import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { CurrentActor } from "../auth/Actor.js"
import { FleetApi } from "../http/Api.js"
import { VmRequests } from "./VmRequests.js"

export const VmsHttp = HttpApiBuilder.group(FleetApi, "vms", (handlers) =>
  Effect.gen(function* () {
    const requests = yield* VmRequests
    return handlers
      .handle("createRequest", ({ payload }) => Effect.flatMap(CurrentActor, (actor) => requests.create(payload, actor)))
      .handle("getRequest", ({ path }) => requests.get(path.id))
      .handle("listVms", ({ urlParams }) => {
        const { cursor, limit, ...filter } = urlParams
        return requests.list(filter, cursor, limit ?? 50)
      })
      .handle("getVm", ({ path }) => requests.getVm(path.id))
      .handle("retryVm", ({ path }) => Effect.flatMap(CurrentActor, (actor) => requests.retry(path.id, actor)))
      .handle("decommissionVm", ({ path }) => Effect.flatMap(CurrentActor, (actor) => requests.decommission(path.id, actor)))
  }))
