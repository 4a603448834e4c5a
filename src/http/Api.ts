import { HttpApi, OpenApi } from "@effect/platform"
import { InventoryApi } from "../inventory/Api.js"
import { VmsApi } from "../vms/Api.js"
import { HealthApi } from "./Health.js"

/** The whole HTTP API: one definition for the server, the client and the OpenAPI document. */
export class FleetApi extends HttpApi.make("fleet")
  .add(HealthApi)
  .add(VmsApi)
  .add(InventoryApi)
  .annotateContext(OpenApi.annotations({
    title: "fleet",
    description: "Keeps VM fleets off deprecated operating systems: VM creation over proctor, inventory, plans and runs."
  }))
{}
