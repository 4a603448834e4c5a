import { Clock, Config, Effect, Option } from "effect"
import type { Actor } from "../auth/Actor.js"
import { Catalog } from "../catalog/Catalog.js"
import { Conflict, InvalidInput, Issue, NotFound } from "../common/Errors.js"
import { uuidv7 } from "../common/Ids.js"
import { Deprecations, expectSupported, type OsStanding, standingOf } from "../planner/Deprecations.js"
import {
  type CreateVmRequest,
  ExecutionView,
  RequestId,
  requestUri,
  Vm,
  VmDetail,
  VmEvent,
  VmId,
  VmPage,
  VmRequest,
  VmRequestAccepted,
  type VmState,
  VmSummary,
  vmUri,
  VmWithHistory
} from "./Domain.js"
import { executionFor, newNames, retryWhenNameTaken } from "./Writes.js"
import { type EventRow, type NewExecution, type NewVm, type VmFilter, VmRepo, type VmRow } from "./Repo.js"
import { emptyCounts, requestState } from "./StateMachine.js"
import { Handoff } from "./Handoff.js"

export const VmRequestsConfig = Config.all({
  maxVmsPerRequest: Config.integer("FLEET_MAX_VMS_PER_REQUEST").pipe(
    Config.validate({ message: "expected at least 1 VM per request", validation: (count) => count >= 1 }),
    Config.withDefault(50)
  )
})

// Views are built from rows the repository has already decoded: validating them again would only
// repeat that work on every read.
const trusted = { disableValidation: true } as const

const toVm = (row: VmRow): Vm => new Vm({ ...row, uri: vmUri(row.id) }, trusted)

const toEvent = (row: EventRow): VmEvent =>
  new VmEvent({ at: row.at, from: row.fromState, to: row.toState, reason: row.reason, actor: row.actor }, trusted)

/** A VM with its history: its own state changes (not a run's steps, nor the start of a readiness check). */
const withHistory = (row: VmRow, events: ReadonlyArray<EventRow>): VmWithHistory =>
  new VmWithHistory({ ...toVm(row), history: events.filter((event) => event.kind === "vm.state").map(toEvent) }, trusted)

/** Cursors are the last id of a page; opaque to clients. */
export const encodeCursor = (id: VmId): string => Buffer.from(id, "utf8").toString("base64url")
const decodeCursor = (cursor: string): Option.Option<VmId> => {
  const id = Buffer.from(cursor, "base64url").toString("utf8")
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) ? Option.some(VmId.make(id)) : Option.none()
}

/**
 * What the deprecation policies say of new VMs on an OS version: past its end of life, they are
 * refused (an issue, listed with the request's other problems); deprecated, they are accepted with
 * a warning that says what will happen to them and what to ask for instead.
 */
const deprecationVerdict = (os: string, standing: OsStanding): { readonly issue?: Issue; readonly warning?: string } => {
  switch (standing.status) {
    case "supported":
      return {}
    case "end-of-life":
      return { issue: Issue.at("osVersion", `${os} is past its end of life (${standing.policy.endOfLife}); ${expectSupported(standing.supported)}`) }
    case "deprecated": {
      const { deprecatedFrom, endOfLife, resolvedReplacement } = standing.policy
      const said = `${os} is deprecated since ${deprecatedFrom} (end of life ${endOfLife}, when new VMs on it are refused)`
      if (resolvedReplacement !== undefined) {
        return { warning: `${said}: a recycle plan of deprecated versions will move these VMs to ${resolvedReplacement}; ask for ${resolvedReplacement} to skip the move` }
      }
      const supported = standing.supported.length > 0 ? `; supported versions: ${standing.supported.join(", ")}` : ""
      return { warning: `${said}: no supported version replaces it in the deprecation policies${supported}` }
    }
  }
}

export interface CreateOptions {
  /** The run that asked, for the event log. */
  readonly runId?: string
}

/** Accepting VM requests (names decided, everything written before proctor hears of it) and reading them back. */
export class VmRequests extends Effect.Service<VmRequests>()("fleet/VmRequests", {
  effect: Effect.gen(function* () {
    const repo = yield* VmRepo
    const catalog = yield* Catalog
    const handoff = yield* Handoff
    const deprecations = yield* Deprecations
    /** Where `os` stands now under the policies this controller remembers. */
    const standingNow = (os: string) =>
      Effect.map(Effect.zip(deprecations.recent, Clock.currentTimeMillis), ([policies, now]) => standingOf(policies, catalog, new Date(now), os))
    const config = yield* VmRequestsConfig

    const create = (input: CreateVmRequest, actor: Actor, options: CreateOptions = {}) =>
      Effect.gen(function* () {
        const issues = [...catalog.checkVmShape(input)]
        // An unknown version has no policy; the catalog's check has already said so.
        const verdict = catalog.isKnownOsVersion(input.osVersion)
          ? deprecationVerdict(input.osVersion, yield* standingNow(input.osVersion))
          : {}
        if (verdict.issue !== undefined) issues.push(verdict.issue)
        if (input.count < 1) issues.push(Issue.at("count", "expected an integer of at least 1"))
        if (input.count > config.maxVmsPerRequest) {
          issues.push(Issue.at("count", `expected at most ${config.maxVmsPerRequest} VMs per request`))
        }
        if (issues.length > 0) return yield* Effect.fail(InvalidInput.fromIssues(issues))
        const metadata = input.metadata ?? {}
        const requestId = RequestId.make(uuidv7())
        const accepted = yield* handoff.writing((handoffs) => retryWhenNameTaken(Effect.gen(function* () {
          const names = newNames(catalog, Array.from({ length: input.count }, () => input))
          const vms: Array<NewVm> = names.map((name) => ({
            id: VmId.make(uuidv7()),
            name,
            application: input.application,
            environment: input.environment,
            stack: input.stack,
            osVersion: input.osVersion,
            machineType: input.machineType,
            metadata,
            createdBy: actor.email
          }))
          const executions: Array<NewExecution> = vms.map((vm) => Option.getOrThrow(executionFor(catalog, "create", vm, actor.email)))
          const claimed = yield* repo.insertRequest(
            {
              id: requestId,
              application: input.application,
              environment: input.environment,
              stack: input.stack,
              osVersion: input.osVersion,
              machineType: input.machineType,
              count: input.count,
              metadata,
              requestedBy: actor.email
            },
            vms,
            executions,
            options.runId ?? null,
            yield* handoffs.claim(executions.length)
          )
          yield* handoffs.wrote(executions.length, claimed)
          return { names, vms }
        }))).pipe(Effect.orDie)
        const { names, vms } = accepted
        yield* Effect.logInfo(`Accepted ${input.count} VM(s) for ${input.application}/${input.environment}`).pipe(
          Effect.annotateLogs({ requestId, vms: names.join(",") })
        )
        if (verdict.warning !== undefined) {
          yield* Effect.logWarning(`Accepted VM request on a deprecated OS version: ${verdict.warning}`).pipe(
            Effect.annotateLogs({ requestId, application: input.application, environment: input.environment, osVersion: input.osVersion, requestedBy: actor.email })
          )
        }
        return new VmRequestAccepted({
          id: requestId,
          uri: requestUri(requestId),
          vms: vms.map((vm) => new VmSummary({ id: vm.id, name: vm.name, uri: vmUri(vm.id) })),
          ...(verdict.warning === undefined ? {} : { warnings: [verdict.warning] })
        })
      })

    const get = (id: RequestId) =>
      Effect.gen(function* () {
        const request = yield* repo.findRequest(id)
        if (Option.isNone(request)) return yield* Effect.fail(NotFound.of("VM request", id))
        const [vms, events] = yield* Effect.all([repo.vmsOfRequest(id), repo.eventsOfRequest(id)], { concurrency: 2 })
        const byVm = new Map<string, Array<EventRow>>()
        for (const event of events) {
          if (event.vmId === null) continue
          const list = byVm.get(event.vmId) ?? []
          list.push(event)
          byVm.set(event.vmId, list)
        }
        const counts = emptyCounts()
        for (const vm of vms) counts[vm.state]++
        return new VmRequest({
          ...request.value,
          uri: requestUri(id),
          state: requestState(vms.map((vm) => vm.state)),
          counts,
          vms: vms.map((vm) => withHistory(vm, byVm.get(vm.id) ?? []))
        }, trusted)
      })

    const getVm = (id: VmId) =>
      Effect.gen(function* () {
        const found = yield* repo.findVmDetail(id)
        if (Option.isNone(found)) return yield* Effect.fail(NotFound.of("VM", id))
        const { history, executions, ...vm } = found.value
        return new VmDetail({
          ...withHistory(vm, history),
          executions: executions.map((execution) => new ExecutionView(execution, trusted))
        }, trusted)
      })

    const list = (filter: VmFilter, cursor: string | undefined, limit: number) =>
      Effect.gen(function* () {
        const after = cursor === undefined ? Option.none<VmId>() : decodeCursor(cursor)
        if (cursor !== undefined && Option.isNone(after)) {
          return yield* Effect.fail(InvalidInput.one("cursor", "expected a cursor returned by a previous page"))
        }
        const rows = yield* repo.listVms(filter, after, limit + 1)
        const items = rows.slice(0, limit)
        return new VmPage({
          items: items.map(toVm),
          nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!.id) : null
        }, trusted)
      })

    /** Starts an execution of a VM in one of `from`, moving it to `to`; a Conflict when it is in another state. */
    const startExecution = (
      id: VmId,
      kind: "create" | "decommission" | "check",
      from: ReadonlyArray<VmState>,
      to: VmState,
      reason: string,
      actor: Actor,
      runId: string | undefined
    ) =>
      Effect.gen(function* () {
        const vm = yield* repo.findVm(id)
        if (Option.isNone(vm)) return yield* Effect.fail(NotFound.of("VM", id))
        const row = vm.value
        const execution = executionFor(catalog, kind, row, actor.email)
        if (Option.isNone(execution)) {
          return yield* Effect.fail(new Conflict({ message: `the catalog has no ${kind} proc for ${row.stack} on ${row.osVersion}` }))
        }
        const started = yield* handoff.writing((handoffs) =>
          Effect.gen(function* () {
            const written = yield* repo.startExecution(execution.value, { vmId: id, from, to, reason, actor: actor.email, runId }, yield* handoffs.claim(1))
            yield* handoffs.wrote(written.started.length, written.claimed)
            return written.started.length > 0
          })
        )
        if (!started) {
          return yield* Effect.fail(new Conflict({ message: `VM ${row.name} is ${row.state}; expected ${from.join(" or ")}` }))
        }
      })

    return {
      create,
      get,
      getVm,
      list,
      /**
       * Creates a failed or timed-out VM again, under the same name; not on an OS version past its
       * end of life, which a new request would be refused (a Conflict naming what to ask for).
       */
      retry: (id: VmId, actor: Actor) =>
        Effect.gen(function* () {
          const vm = yield* repo.findVm(id)
          // Only a VM that could be retried is told about its version: a ready one is told it is ready (by startExecution).
          const retriable = Option.exists(vm, (found) => found.state === "failed" || found.state === "timed_out")
          if (Option.isSome(vm) && retriable && catalog.isKnownOsVersion(vm.value.osVersion)) {
            const os = vm.value.osVersion
            const standing = yield* standingNow(os)
            if (standing.status === "end-of-life") {
              return yield* Effect.fail(new Conflict({
                message: `VM ${vm.value.name} is on ${os}, past its end of life (${standing.policy.endOfLife}): it is not created again; ` +
                  (standing.supported.length > 0 ? `request a new VM on a supported version: ${standing.supported.join(", ")}` : expectSupported([]))
              }))
            }
          }
          return yield* startExecution(id, "create", ["failed", "timed_out"], "pending", "creation retried with the same name", actor, undefined)
        }),
      /** Asks proctor to remove a ready VM. */
      decommission: (id: VmId, actor: Actor, options: { readonly runId?: string; readonly reason?: string } = {}) =>
        startExecution(id, "decommission", ["ready"], "decommissioning", options.reason ?? "decommission requested", actor, options.runId),
    } as const
  }),
  dependencies: [VmRepo.Default, Handoff.Default, Deprecations.Default]
}) {}
