/** fleet's typed client: `import { FleetClient, createVmsAndWait } from "fleet/client"`. */
export * from "./Client.js"
export { CreateVmRequest, RequestId, VmId } from "../vms/Domain.js"
export type { Plan, RecyclePlanSpec } from "../planner/Domain.js"
export { DeprecationList, DeprecationView, PlanId, PlanVerification, SavedPlan, SavedPlanList, SavedPlanSummary, StalePlan } from "../planner/Records.js"
