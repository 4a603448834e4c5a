/** fleet's typed client: `import { FleetClient, createVmsAndWait } from "fleet/client"`. */
export * from "./Client.js"
export { CreateVmRequest, RequestId, VmId } from "../vms/Domain.js"
