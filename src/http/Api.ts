import { HttpApi, OpenApi } from "@effect/platform"
import { AuditApi } from "../audit/Api.js"
import { InventoryApi } from "../inventory/Api.js"
import { MetricsApi } from "../metrics/Api.js"
import { DeprecationsApi, PlansApi } from "../planner/Api.js"
import { VmsApi } from "../vms/Api.js"
import { RunsApi } from "../executor/Api.js"
import { version } from "../common/Version.js"
import { HealthApi } from "./Health.js"
import { documentHttpLayer } from "./OpenApiDoc.js"

/** The whole HTTP API: one definition for the server, the client and the OpenAPI document. */
export class FleetApi extends HttpApi.make("fleet")
  .add(HealthApi)
  .add(VmsApi)
  .add(InventoryApi)
  .add(PlansApi)
  .add(DeprecationsApi)
  .add(RunsApi)
  .add(AuditApi)
  .add(MetricsApi)
  .annotateContext(OpenApi.annotations({
    title: "fleet",
    version,
    description: "Keeps VM fleets off deprecated operating systems: VM creation over proctor, inventory, plans and runs.",
    transform: documentHttpLayer
  }))
{}
