/** What the tests of VM rows share: a request of one VM, and a fresh database with services on it. */
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Redacted } from "effect"
import { uuidv7 } from "../../src/common/Ids.js"
import { layerFromUrl } from "../../src/db/Database.js"
import { ExecutionRecordId, RequestId, VmId } from "../../src/vms/Domain.js"
import type { NewRequest } from "../../src/vms/Repo.js"
import { freshDatabase } from "../support/Database.js"

/** A request of one VM, with its create execution. */
export const oneVmRequest = (name: string): NewRequest => {
  const requestId = RequestId.make(uuidv7())
  const vmId = VmId.make(uuidv7())
  const shape = { application: "billing", environment: "staging", stack: "go", osVersion: "ubuntu-24.04", machineType: "e2-small" }
  return {
    request: { id: requestId, ...shape, count: 1, metadata: {}, requestedBy: "ann@example.com" },
    vms: [{ id: vmId, name, ...shape, metadata: {}, createdBy: "ann@example.com" }],
    executions: [{ id: ExecutionRecordId.make(uuidv7()), vmId, kind: "create", proc: "create-vm", args: { VM_NAME: name }, emailId: "ann@example.com" }]
  }
}

/** Runs `body` against a fresh database, with `services` on top of it. */
export const onFreshDatabase = <A, E, S>(services: Layer.Layer<S, never, SqlClient.SqlClient>, body: Effect.Effect<A, E, S | SqlClient.SqlClient>) =>
  Effect.flatMap(freshDatabase, ({ url }) =>
    Effect.provide(body, services.pipe(Layer.provideMerge(layerFromUrl(Redacted.make(url), 2)))).pipe(Effect.orDie))

/** A VM's or an execution's state as the database has it now. */
export const stateOf = (table: "vms" | "executions", id: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(sql<{ state: string }>`select state from ${sql(table)} where id = ${id}`, (rows) => rows[0]?.state))
