import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../auth/Middleware.js"
import { Conflict, InvalidInput, NotFound, strictInput } from "../common/Errors.js"
import { CreateVmRequest, RequestId, VmDetail, VmId, VmPage, VmRequest, VmRequestAccepted, VmState } from "./Domain.js"
import { PageLimit, QueryCursor, QueryText } from "../common/QueryParams.js"
import { RequiredScope } from "../auth/Scopes.js"

const Limit = PageLimit(500)

export const ListVmsParams = Schema.Struct({
  application: QueryText("an application name", 100),
  environment: QueryText("an environment name", 100),
  stack: QueryText("a stack name", 100),
  osVersion: QueryText("an OS version", 100),
  state: Schema.optional(VmState),
  limit: Schema.optional(Limit),
  cursor: QueryCursor
})

export class VmsApi extends HttpApiGroup.make("vms")
  .add(
    HttpApiEndpoint.post("createRequest", "/v1/vm-requests").annotate(RequiredScope, "vms:write")
      .setPayload(strictInput(CreateVmRequest))
      .addSuccess(VmRequestAccepted, { status: 202 })
      .addError(InvalidInput)
  )
  .add(
    HttpApiEndpoint.get("getRequest", "/v1/vm-requests/:id").annotate(RequiredScope, "vms:read")
      .setPath(Schema.Struct({ id: RequestId }))
      .addSuccess(VmRequest)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("listVms", "/v1/vms").annotate(RequiredScope, "vms:read")
      .setUrlParams(strictInput(ListVmsParams))
      .addSuccess(VmPage)
      .addError(InvalidInput)
  )
  .add(
    HttpApiEndpoint.get("getVm", "/v1/vms/:id").annotate(RequiredScope, "vms:read")
      .setPath(Schema.Struct({ id: VmId }))
      .addSuccess(VmDetail)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.post("retryVm", "/v1/vms/:id/retry").annotate(RequiredScope, "vms:write")
      .setPath(Schema.Struct({ id: VmId }))
      .addSuccess(VmDetail, { status: 202 })
      .addError(NotFound)
      .addError(Conflict)
  )
  .add(
    HttpApiEndpoint.post("decommissionVm", "/v1/vms/:id/decommission").annotate(RequiredScope, "vms:write")
      .setPath(Schema.Struct({ id: VmId }))
      .addSuccess(VmDetail, { status: 202 })
      .addError(NotFound)
      .addError(Conflict)
  )
  .middleware(Authentication)
{}
