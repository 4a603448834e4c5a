import { Effect, Option } from "effect"
import type { CatalogData } from "../catalog/Catalog.js"
import type { EnvironmentName, OsVersion, StackName } from "../catalog/Domain.js"
import { pooledRandomBytes, uuidv7 } from "../common/Ids.js"
import { ExecutionKind, ExecutionRecordId, type VmId } from "./Domain.js"
import { suffixFromBytes, vmName } from "./Naming.js"
import type { NameTaken, NewExecution } from "./Repo.js"

/**
 * What fleet decides before proctor hears of a VM: its name, and the execution that will create,
 * check or decommission it. One place for the API's requests and the executor's steps.
 */

export interface NamedShape {
  readonly application: string
  readonly environment: string
  readonly stack: string
  readonly osVersion: string
}

/**
 * A new name for each shape (repeat a shape for several VMs of it), no two alike. Whether one is
 * taken already is left to the unique index: the write then fails with NameTaken, and the caller
 * draws new names — rare enough (30 random bits per name within a fleet) not to check first.
 */
export const newNames = (catalog: CatalogData, shapes: ReadonlyArray<NamedShape>): Array<string> => {
  const names = new Set<string>()
  return shapes.map((shape) => {
    while (true) {
      const name = vmName({
        application: shape.application,
        environmentShort: catalog.shortEnvironment(shape.environment as EnvironmentName),
        stack: shape.stack,
        osShort: catalog.shortOsVersion(shape.osVersion as OsVersion)
      }, suffixFromBytes(pooledRandomBytes(8)))
      if (!names.has(name)) {
        names.add(name)
        return name
      }
    }
  })
}

/**
 * Runs `write` (which draws its names) again when another controller took one of the names
 * between the draw and the insert, up to `retries` more times. (Written as a catch rather than
 * `Effect.retry`, whose schedule was set up for every write though it is almost never used.)
 */
export const retryWhenNameTaken = <A, E, R>(write: Effect.Effect<A, E | NameTaken, R>, retries = 3): Effect.Effect<A, E | NameTaken, R> =>
  Effect.catchIf(
    write,
    (error): error is NameTaken => (error as { readonly _tag?: unknown })._tag === "NameTaken",
    (error) => (retries > 0 ? retryWhenNameTaken(write, retries - 1) : Effect.fail(error))
  )

export interface ExecutionTarget extends NamedShape {
  readonly id: VmId
  readonly name: string
  readonly machineType: string
}

/**
 * The execution of `kind` for a VM, with the catalog's proc and the args every proc of that kind
 * receives (the VM's name always among them); none when the catalog has no such proc.
 */
export const executionFor = (
  catalog: CatalogData,
  kind: ExecutionKind,
  vm: ExecutionTarget,
  emailId: string
): Option.Option<NewExecution> => {
  const proc = kind === "create"
    ? catalog.createProcFor(vm.stack as StackName, vm.osVersion as OsVersion)
    : kind === "decommission"
    ? Option.some(catalog.decommissionProc)
    : catalog.readinessProc
  return Option.map(proc, (entry) => {
    const base = { ...entry.args, VM_NAME: vm.name, APPLICATION: vm.application, ENVIRONMENT: vm.environment }
    return {
      id: ExecutionRecordId.make(uuidv7()),
      vmId: vm.id,
      kind,
      proc: entry.proc,
      args: kind === "create" ? { ...base, STACK: vm.stack, OS_VERSION: vm.osVersion, MACHINE_TYPE: vm.machineType } : base,
      emailId
    }
  })
}
