import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../auth/Middleware.js"
import { InvalidInput, strictInput } from "../common/Errors.js"
import { ListVmsParams } from "../vms/Api.js"
import { GroupBy, Inventory } from "./Domain.js"
import { RequiredScope } from "../auth/Scopes.js"

export const InventoryParams = Schema.Struct({
  ...ListVmsParams.omit("limit", "cursor").fields,
  groupBy: Schema.optional(GroupBy),
  includeDecommissioned: Schema.optional(Schema.BooleanFromString)
})

export class InventoryApi extends HttpApiGroup.make("inventory")
  .add(
    HttpApiEndpoint.get("inventory", "/v1/inventory").annotate(RequiredScope, "vms:read")
      .setUrlParams(strictInput(InventoryParams))
      .addSuccess(Inventory)
      .addError(InvalidInput)
  )
  .middleware(Authentication)
{}
