import { Effect, Option } from "effect"
import type { CatalogData } from "../catalog/Catalog.js"
import { InvalidInput } from "../common/Errors.js"
import { uuidv7 } from "../common/Ids.js"
import { type ExecutionRecordId, RequestId, VmId, type VmState } from "../vms/Domain.js"
import { type ExecutionTarget, executionFor, newNames, retryWhenNameTaken } from "../vms/Writes.js"
import type { Handoffs } from "../vms/Handoff.js"
import type { NewExecution, NewRequest, VmChange, VmRepo, WaitingExecution } from "../vms/Repo.js"
import type { PendingStep, RunRow, StepChange, StepRow } from "./Repo.js"
import { swapReason } from "./Scheduling.js"

/**
 * The rows a run's steps write for the VM reconciler to carry out, in bulk: the same rows as the
 * VM creation path (`VmRequests.create`, `decommission`, `check`) — every VM's name decided and
 * every execution written before proctor hears of it — but a few statements per executor tick
 * rather than a few per step, so a tick that starts or decommissions fifty steps stays short.
 */

/** A proctor execution a step needs on one of its VMs, which must be `ready`. */
export interface ExecutionIntent {
  readonly stepId: StepRow["id"]
  readonly kind: "decommission" | "check"
  readonly vm: ExecutionTarget
  /** The VM's state while the execution runs. */
  readonly to: VmState
  /** The VM's event and, when started, the step's reason. */
  readonly reason: string
  /** The step's state once the execution is written. */
  readonly stepState: StepRow["state"]
  /** The step's reason when the execution cannot start (it is prefixed to the why). */
  readonly failure: string
}

/** The step a step is queued behind: its finishing (its old VM decommissioned) starts the queued one. */
export interface StepAhead {
  readonly id: StepRow["id"]
  /** Its old VM's decommission (its swap, or the executor's), under way or waiting: its success starts the queued step. */
  readonly decommissionId: ExecutionRecordId
  readonly oldVmName: string
}

const creatingReason = (vmName: string, step: StepRow) => `creating ${vmName} on ${step.targetOs} to replace ${step.oldVmName}`
const queuedReason = (vmName: string, step: StepRow, behind: StepAhead) =>
  `queued: ${vmName} is created on ${step.targetOs} to replace ${step.oldVmName} once ${behind.oldVmName} is decommissioned`

/** A step's old VM, as an execution's target. */
export const oldVmOf = (step: StepRow): ExecutionTarget => ({ ...step, id: step.oldVmId, name: step.oldVmName, osVersion: step.fromOs })

export const makeStepWrites = (vmRepo: VmRepo, catalog: CatalogData) => {
  /** Writes the executions; each intent's step change: moved on, or failed with why the execution could not start. */
  const startExecutions = (run: RunRow, intents: ReadonlyArray<ExecutionIntent>, handoffs: Handoffs) =>
    Effect.gen(function* () {
      if (intents.length === 0) return []
      const changes: Array<StepChange> = []
      const items: Array<{ readonly intent: ExecutionIntent; readonly execution: NewExecution; readonly change: VmChange }> = []
      for (const intent of intents) {
        const execution = executionFor(catalog, intent.kind, intent.vm, run.createdBy)
        if (Option.isNone(execution)) {
          changes.push({ id: intent.stepId, state: "failed", reason: `${intent.failure}: the catalog has no ${intent.kind} proc` })
          continue
        }
        items.push({
          intent,
          execution: execution.value,
          change: { vmId: intent.vm.id, from: ["ready"], to: intent.to, reason: intent.reason, actor: run.createdBy, runId: run.id }
        })
      }
      const claim = yield* handoffs.claim(items.length)
      const written = yield* vmRepo.startExecutions(items.map(({ change, execution }) => ({ execution, change })), claim)
      yield* handoffs.wrote(written.started.length, written.claimed)
      const started = new Set<string>(written.started)
      for (const { execution, intent } of items) {
        if (started.has(execution.id)) {
          changes.push({ id: intent.stepId, state: intent.stepState, reason: intent.reason })
        } else {
          const vm = yield* vmRepo.findVm(intent.vm.id)
          const why = Option.match(vm, { onNone: () => `VM ${intent.vm.name} not found`, onSome: (row) => `VM ${row.name} is ${row.state}; expected ready` })
          changes.push({ id: intent.stepId, state: "failed", reason: `${intent.failure}: ${why}` })
        }
      }
      return changes
    })

  /**
   * Writes a replacement for each step (one VM request of one VM on the step's target OS, with
   * the old VM's metadata and `replaces`/`run`); each step's change: creating its replacement
   * (queued when it is written behind a step ahead), or failed with why it could not be requested.
   * With `swapWhenReady` (nothing to wait for between the replacement being ready and the old
   * VM's decommission: no readiness check, no bake), the decommission is written too, waiting for
   * the replacement: it starts in the statement that records the replacement ready, without
   * waiting for the executor. A step queued behind another has its creation waiting likewise, for
   * the decommission of the step ahead to succeed. Also the swaps written, by step.
   */
  const writeReplacements = (
    run: RunRow,
    items: ReadonlyArray<{ readonly step: PendingStep; readonly behind?: StepAhead }>,
    handoffs: Handoffs,
    swapWhenReady: boolean
  ) =>
    Effect.gen(function* () {
      const changes: Array<StepChange> = []
      const swaps = new Map<string, ExecutionRecordId>()
      if (items.length === 0) return { changes, swaps }
      const behindOf = new Map(items.flatMap(({ behind, step }) => behind === undefined ? [] : [[step.id as string, behind] as const]))
      const valid: Array<PendingStep> = []
      for (const { step } of items) {
        const issues = catalog.checkVmShape({
          application: step.application,
          environment: step.environment,
          stack: step.stack,
          osVersion: step.targetOs,
          machineType: step.machineType
        })
        if (issues.length > 0) {
          changes.push({ id: step.id, state: "failed", reason: `could not request a replacement: ${InvalidInput.fromIssues(issues).message}` })
        } else {
          valid.push(step)
        }
      }
      const build = Effect.sync(() => {
        const names = newNames(catalog, valid.map((step) => ({ ...step, osVersion: step.targetOs })))
        return valid.map((step, index): NewRequest & { readonly step: StepRow } => {
          const requestId = RequestId.make(uuidv7())
          const metadata = { ...step.oldVmMetadata, replaces: step.oldVmName, run: run.id }
          const vm = {
            id: VmId.make(uuidv7()),
            name: names[index]!,
            application: step.application,
            environment: step.environment,
            stack: step.stack,
            osVersion: step.targetOs,
            machineType: step.machineType,
            metadata,
            createdBy: run.createdBy
          }
          const swap = swapWhenReady ? executionFor(catalog, "decommission", oldVmOf(step), run.createdBy) : Option.none()
          const waitingSwap = Option.map(swap, (execution): WaitingExecution => ({
            ...execution,
            kind: "decommission",
            afterVmId: vm.id,
            reason: swapReason(step.oldVmName, vm.name),
            runId: run.id
          }))
          const create = Option.getOrThrow(executionFor(catalog, "create", vm, run.createdBy))
          const behind = behindOf.get(step.id)
          const waitingCreate: ReadonlyArray<WaitingExecution> = behind === undefined ? [] : [{
            ...create,
            kind: "create",
            afterExecutionId: behind.decommissionId,
            reason: `creating ${vm.name}: ${behind.oldVmName} was decommissioned`,
            runId: run.id
          }]
          return {
            step,
            waiting: [...waitingCreate, ...Option.toArray(waitingSwap)],
            request: {
              id: requestId,
              application: step.application,
              environment: step.environment,
              stack: step.stack,
              osVersion: step.targetOs,
              machineType: step.machineType,
              count: 1,
              metadata,
              requestedBy: run.createdBy
            },
            vms: [vm],
            executions: behind === undefined ? [create] : []
          }
        })
      })
      const claim = yield* handoffs.claim(valid.filter((step) => !behindOf.has(step.id)).length)
      const { claimed, written } = yield* retryWhenNameTaken(
        Effect.flatMap(build, (batch) => Effect.map(vmRepo.insertRequests(batch, run.id, claim), (claimed) => ({ claimed, written: batch })))
      ).pipe(Effect.orDie)
      yield* handoffs.wrote(written.length, claimed)
      for (const { step, vms, waiting } of written) {
        const vm = vms[0]!
        const swap = (waiting ?? []).find((execution) => execution.kind === "decommission")
        if (swap !== undefined) swaps.set(step.id, swap.id)
        const behind = behindOf.get(step.id)
        changes.push({
          id: step.id,
          newVmId: vm.id,
          newVmName: vm.name,
          ...(behind === undefined
            ? { state: "creating", reason: creatingReason(vm.name, step) }
            : {
              state: "queued",
              afterStepId: behind.id,
              reason: queuedReason(vm.name, step, behind)
            })
        })
      }
      if (written.length > 0) {
        yield* Effect.logInfo(`${behindOf.size > 0 ? "Queued" : "Requested"} ${written.length} replacement VM(s)`).pipe(
          Effect.annotateLogs({ vms: written.map(({ vms }) => vms[0]!.name).join(",") })
        )
      }
      return { changes, swaps }
    })

  /** Requests a replacement for each step, created at once (see writeReplacements); the step changes, and the swaps written. */
  const requestReplacements = (run: RunRow, steps: ReadonlyArray<PendingStep>, handoffs: Handoffs, swapWhenReady: boolean) =>
    writeReplacements(run, steps.map((step) => ({ step })), handoffs, swapWhenReady)

  /**
   * Queues each step behind a step under way: its replacement is written with its creation
   * waiting for the decommission of the step ahead to succeed, and its swap waiting for the
   * replacement (see writeReplacements).
   */
  const queueReplacements = (run: RunRow, items: ReadonlyArray<{ readonly step: PendingStep; readonly behind: StepAhead }>, handoffs: Handoffs) =>
    Effect.map(writeReplacements(run, items, handoffs, true), ({ changes }) => changes)

  /**
   * Starts queued steps' creations now, when the step ahead finished without starting them (it
   * failed, or the step was held); each step's change: creating. One whose creation started
   * meanwhile changes with the next advance.
   */
  const startQueued = (steps: ReadonlyArray<StepRow>, handoffs: Handoffs) =>
    Effect.gen(function* () {
      if (steps.length === 0) return []
      const started = new Set<string>(yield* vmRepo.startWaitingCreates(steps.map((step) => step.newVmId!)))
      yield* handoffs.wrote(started.size, [])
      return steps.filter((step) => started.has(step.newVmId!)).map((step): StepChange => ({
        id: step.id,
        state: "creating",
        reason: creatingReason(step.newVmName ?? "", step)
      }))
    })

  /** Queues held steps again, each behind a step under way: its creation waits for that step's decommission to succeed. */
  const requeue = (items: ReadonlyArray<{ readonly step: StepRow; readonly behind: StepAhead }>) =>
    Effect.map(vmRepo.attachWaitingCreates(items.map(({ behind, step }) => ({ vmId: step.newVmId!, afterExecutionId: behind.decommissionId }))), (attached) => {
      const attachedVms = new Set<string>(attached)
      return items.filter(({ step }) => attachedVms.has(step.newVmId!)).map(({ behind, step }): StepChange => ({
        id: step.id,
        state: "queued",
        afterStepId: behind.id,
        reason: queuedReason(step.newVmName ?? "", step, behind)
      }))
    })

  return { startExecutions, requestReplacements, queueReplacements, startQueued, requeue } as const
}

/**
 * Holds queued steps: their creation no longer waits for the step ahead (nothing but the executor
 * starts it); each step's change, still queued, with nothing ahead and `reason`. One whose
 * creation started meanwhile is left out, and changes with the next advance.
 */
export const holdQueued = (vmRepo: VmRepo, steps: ReadonlyArray<StepRow>, reason: string) =>
  Effect.map(vmRepo.holdWaitingCreates(steps.map((step) => step.newVmId!)), (held) => {
    const heldVms = new Set<string>(held)
    return steps.filter((step) => heldVms.has(step.newVmId!)).map((step): StepChange => ({ id: step.id, state: "queued", afterStepId: null, reason }))
  })
