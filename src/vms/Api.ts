import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../auth/Middleware.js"
import { Conflict, InvalidInput, NotFound, strictInput } from "../common/Errors.js"
import { CreateVmRequest, RequestId, VmDetail, VmId, VmPage, VmRequest, VmRequestAccepted, VmState } from "./Domain.js"
import { PageLimit } from "../common/PageLimit.js"

const Limit = PageLimit(500)

/** `name` with its article: "an application name", "a stack name". */
const Filter = (name: string) =>
  Schema.optional(
    Schema.String.pipe(
      Schema.maxLength(100, { message: () => `expected ${name} of at most 100 characters` }),
      // PostgreSQL text cannot hold NUL: refuse control characters here rather than fail in the query.
      Schema.pattern(/^[^\p{Cc}]*$/u, { message: () => `expected ${name} without control characters` })
    )
  )

export const ListVmsParams = Schema.Struct({
  application: Filter("an application name"),
  environment: Filter("an environment name"),
  stack: Filter("a stack name"),
  osVersion: Filter("an OS version"),
  state: Schema.optional(VmState),
  limit: Schema.optional(Limit),
  cursor: Schema.optional(Schema.String.pipe(Schema.maxLength(200, { message: () => "expected a cursor returned by a previous page" })))
})

export class VmsApi extends HttpApiGroup.make("vms")
  .add(
    HttpApiEndpoint.post("createRequest", "/v1/vm-requests")
      .setPayload(strictInput(CreateVmRequest))
      .addSuccess(VmRequestAccepted, { status: 202 })
      .addError(InvalidInput)
  )
  .add(
    HttpApiEndpoint.get("getRequest", "/v1/vm-requests/:id")
      .setPath(Schema.Struct({ id: RequestId }))
      .addSuccess(VmRequest)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("listVms", "/v1/vms")
      .setUrlParams(strictInput(ListVmsParams))
      .addSuccess(VmPage)
      .addError(InvalidInput)
  )
  .add(
    HttpApiEndpoint.get("getVm", "/v1/vms/:id")
      .setPath(Schema.Struct({ id: VmId }))
      .addSuccess(VmDetail)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.post("retryVm", "/v1/vms/:id/retry")
      .setPath(Schema.Struct({ id: VmId }))
      .addSuccess(VmDetail, { status: 202 })
      .addError(NotFound)
      .addError(Conflict)
  )
  .add(
    HttpApiEndpoint.post("decommissionVm", "/v1/vms/:id/decommission")
      .setPath(Schema.Struct({ id: VmId }))
      .addSuccess(VmDetail, { status: 202 })
      .addError(NotFound)
      .addError(Conflict)
  )
  .middleware(Authentication)
{}
