import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { applicationGlobs, authorizeApplication, canSee, requireScope } from "../auth/Authorization.js"
import { NotFound } from "../common/Errors.js"
import { FleetApi } from "../http/Api.js"
import type { VmId } from "./Domain.js"
import { VmRequests } from "./VmRequests.js"

export const VmsHttp = HttpApiBuilder.group(FleetApi, "vms", (handlers) =>
  Effect.gen(function* () {
    const requests = yield* VmRequests
    /**
     * The VM, if the caller's token has `scope` and covers its application; otherwise as if it did
     * not exist. Acting on a VM (vms:write) does not need vms:read as well.
     */
    const visibleVm = (id: VmId, scope: "vms:read" | "vms:write") =>
      Effect.gen(function* () {
        const caller = yield* requireScope(scope)
        const vm = yield* requests.getVm(id)
        return canSee(caller, vm.application) ? { caller, vm } : yield* Effect.fail(NotFound.of("VM", id))
      })
    return handlers
      .handle("createRequest", ({ payload }) =>
        Effect.gen(function* () {
          yield* requireScope("vms:write")
          const caller = yield* authorizeApplication(payload.application)
          return yield* requests.create(payload, caller)
        }))
      .handle("getRequest", ({ path }) =>
        Effect.gen(function* () {
          const caller = yield* requireScope("vms:read")
          const request = yield* requests.get(path.id)
          return canSee(caller, request.application) ? request : yield* Effect.fail(NotFound.of("VM request", path.id))
        }))
      .handle("listVms", ({ urlParams }) =>
        Effect.gen(function* () {
          const caller = yield* requireScope("vms:read")
          if (urlParams.application !== undefined) yield* authorizeApplication(urlParams.application)
          const { cursor, limit, ...filter } = urlParams
          return yield* requests.list({ ...filter, applicationGlobs: applicationGlobs(caller) }, cursor, limit ?? 50)
        }))
      .handle("getVm", ({ path }) => Effect.map(visibleVm(path.id, "vms:read"), ({ vm }) => vm))
      .handle("retryVm", ({ path }) =>
        Effect.gen(function* () {
          const { caller } = yield* visibleVm(path.id, "vms:write")
          yield* requests.retry(path.id, caller)
          return yield* requests.getVm(path.id)
        }))
      .handle("decommissionVm", ({ path }) =>
        Effect.gen(function* () {
          const { caller } = yield* visibleVm(path.id, "vms:write")
          yield* requests.decommission(path.id, caller)
          return yield* requests.getVm(path.id)
        }))
  }))
