/**
 * The proctor simulator's behaviour, without HTTP: a development tool, never proctor itself.
 *
 * Everything here is synchronous and driven by the `now` the caller passes in, so the same
 * sequence of calls with the same seed and clock always gives the same answers. Executions
 * need no timers: an execution's status is a function of the time since it was submitted, and
 * its effect on the ledger (a VM created or destroyed) is applied lazily, in finish-time order,
 * the next time anything reads the state.
 */
import { Schema } from "effect"
import type { ExecutionFields } from "./V2Wire.js"
import { mulberry32 } from "../common/Random.js"
import { type FailureState, formatProctorTime } from "./Domain.js"

export type ProcKind = "create" | "destroy" | "check"

/** A proc the simulator knows. */
export interface SimProc {
  readonly name: string
  readonly kind: ProcKind
  /** Arg names the proc declares (listed by `GET /metadata`). */
  readonly args?: ReadonlyArray<string>
  readonly description?: string
  /** When set (and auth is on), only these users may run it; the others get 403. */
  readonly authorizedEmails?: ReadonlyArray<string>
}

// ---------------------------------------------------------------------------------------------
// Knobs

const Rate = Schema.Number.pipe(Schema.between(0, 1, { message: () => "expected a rate between 0 and 1" }))
const Millis = Schema.Number.pipe(Schema.nonNegative({ message: () => "expected a non-negative number of milliseconds" }))

export const Durations = Schema.Struct({ create: Millis, destroy: Millis, check: Millis })
export type Durations = typeof Durations.Type

/** Everything about the simulator's behaviour that can change while it runs. */
export const SimulatorKnobs = Schema.Struct({
  /** Delay before answering any proctor API call. */
  responseLatencyMs: Millis,
  /** Time from submission to the terminal state, per kind of proc. */
  durationMs: Durations,
  /** Share of POSTs answered with a transient 500 that creates nothing. */
  failureRate: Rate,
  /** Share of executions that end in a failure state (such as POD_FAILED) and do nothing. */
  executionFailureRate: Rate,
  /** Share of executions whose status stays CREATED forever and that do nothing (proctor's watcher quirk). */
  stuckRate: Rate,
  /** Share of POSTs whose execution IS created but whose answer is lost (the socket is destroyed). */
  lostResponseRate: Rate,
  /** Seed of the random source; setting it at run time restarts the sequence. */
  seed: Schema.Int
})
export type SimulatorKnobs = typeof SimulatorKnobs.Type

/** A change to the knobs: any subset, `durationMs` by kind. */
const optional = <A, I>(schema: Schema.Schema<A, I>) => Schema.optionalWith(schema, { exact: true })
export const KnobsPatch = Schema.Struct({
  responseLatencyMs: optional(Millis),
  durationMs: optional(Schema.partialWith(Durations, { exact: true })),
  failureRate: optional(Rate),
  executionFailureRate: optional(Rate),
  stuckRate: optional(Rate),
  lostResponseRate: optional(Rate),
  seed: optional(Schema.Int)
})
export type KnobsPatch = typeof KnobsPatch.Type

export const defaultKnobs: SimulatorKnobs = {
  responseLatencyMs: 0,
  durationMs: { create: 3000, destroy: 2000, check: 500 },
  failureRate: 0,
  executionFailureRate: 0,
  stuckRate: 0,
  lostResponseRate: 0,
  seed: 42
}

export const applyPatch = (knobs: SimulatorKnobs, patch: KnobsPatch): SimulatorKnobs => ({
  responseLatencyMs: patch.responseLatencyMs ?? knobs.responseLatencyMs,
  durationMs: {
    create: patch.durationMs?.create ?? knobs.durationMs.create,
    destroy: patch.durationMs?.destroy ?? knobs.durationMs.destroy,
    check: patch.durationMs?.check ?? knobs.durationMs.check
  },
  failureRate: patch.failureRate ?? knobs.failureRate,
  executionFailureRate: patch.executionFailureRate ?? knobs.executionFailureRate,
  stuckRate: patch.stuckRate ?? knobs.stuckRate,
  lostResponseRate: patch.lostResponseRate ?? knobs.lostResponseRate,
  seed: patch.seed ?? knobs.seed
})

// ---------------------------------------------------------------------------------------------
// Pure pieces


export type Outcome = "success" | "failure" | "stuck"
export type Phase = "CREATED" | "JOB_READY" | "POD_READY" | "DONE"

/** Where an execution is `elapsedMs` after submission: thirds of its duration for each in-progress state. */
export const phaseAt = (elapsedMs: number, durationMs: number): Phase => {
  if (elapsedMs >= durationMs) return "DONE"
  if (elapsedMs < durationMs / 3) return "CREATED"
  return elapsedMs < (2 * durationMs) / 3 ? "JOB_READY" : "POD_READY"
}

/** When the current phase began (proctor's `updated_at`). */
export const phaseStart = (phase: Phase, submittedAt: number, durationMs: number): number =>
  phase === "CREATED" ? submittedAt
  : phase === "JOB_READY" ? submittedAt + durationMs / 3
  : phase === "POD_READY" ? submittedAt + (2 * durationMs) / 3
  : submittedAt + durationMs

/** Proctor's comparison of `Client-Version` with its minimum: numeric parts, left to right. */
export const compareVersions = (left: string, right: string): number | undefined => {
  const parse = (version: string) => {
    const core = version.trim().replace(/^v/, "").split(/[-+]/)[0]!
    const parts = core.split(".")
    return parts.every((part) => /^[0-9]+$/.test(part)) ? parts.map(Number) : undefined
  }
  const a = parse(left)
  const b = parse(right)
  if (!a || !b) return undefined
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0)
    if (difference !== 0) return Math.sign(difference)
  }
  return 0
}

const failureStatesDrawn: ReadonlyArray<FailureState> = ["POD_FAILED", "POD_FAILED", "JOB_CREATION_FAILED", "POD_CREATION_FAILED"]

/** The first id handed out is one above this: above 2^53, and not representable as a double. */
export const firstExecutionId = 7166810340089565184n

// ---------------------------------------------------------------------------------------------
// Records

/** A VM the simulator has created (and maybe destroyed). Times are epoch milliseconds of the simulated clock. */
export interface VmRecord {
  readonly name: string
  /** The proc that created it. */
  readonly proc: string
  /** When its create execution reached FINISHED. */
  readonly createdAt: number
  /** The execution that created it. */
  readonly createdBy: string
  readonly destroyedAt: number | null
  readonly destroyedBy: string | null
  /** Accepted create POSTs that named it, over the simulator's life (lost answers included). */
  readonly createSubmissions: number
}

export interface ExecutionRecord {
  readonly id: string
  readonly proc: string
  readonly kind: ProcKind
  readonly vmName: string | null
  readonly emailId: string
  readonly submittedAt: number
  /** When it reached its terminal state; null while in progress, and forever when stuck. */
  readonly finishedAt: number | null
  /** Its status now (terminal once `finishedAt` is set). */
  readonly status: string
  readonly stuck: boolean
  /** The POST created it but its answer was never sent. */
  readonly responseLost: boolean
  /** What it did to the ledger, once finished. */
  readonly effect: "created" | "destroyed" | "none" | null
}

export interface SimulatorLedger {
  /** The simulated clock when this was read. */
  readonly now: number
  readonly vms: ReadonlyArray<VmRecord>
  readonly executions: ReadonlyArray<ExecutionRecord>
}

/** Proctor API calls seen, by endpoint and outcome. */
export interface SimulatorStats {
  /** Every proctor API request (the `/__sim` endpoints are not counted). */
  readonly calls: number
  readonly submit: {
    /** Execution created and 201 sent. */
    readonly accepted: number
    /** Simulated transient 500: nothing created. */
    readonly failed: number
    /** Execution created, answer lost. */
    readonly lost: number
    readonly unknownProc: number
    readonly malformed: number
  }
  readonly status: { readonly ok: number; readonly notFound: number; readonly badRequest: number }
  readonly metadata: number
  readonly ping: number
  readonly rejected: { readonly unauthorized: number; readonly forbidden: number; readonly outdatedClient: number }
}

interface MutableExecution {
  readonly id: string
  readonly seq: number
  readonly proc: SimProc
  readonly vmName: string | null
  readonly emailId: string
  /** The Kubernetes job name (proctor's `name`). */
  readonly kubeName: string
  readonly submittedAt: number
  readonly durationMs: number
  readonly outcome: Outcome
  readonly failureStatus: FailureState
  responseLost: boolean
  finishedAt: number | null
  finalStatus: string | null
  effect: "created" | "destroyed" | "none" | null
}

interface MutableVm {
  readonly name: string
  readonly proc: string
  readonly createdAt: number
  readonly createdBy: string
  destroyedAt: number | null
  destroyedBy: string | null
}

/** What proctor returns about one execution (its wire fields). */
export type ExecutionView = ExecutionFields

export type SubmitResult =
  | { readonly _tag: "UnknownProc"; readonly proc: string }
  | { readonly _tag: "Failed" }
  | { readonly _tag: "Accepted"; readonly execution: ExecutionView; readonly lost: boolean }

/** A min-heap of executions by planned finish time (then submission order). */
class FinishQueue {
  private readonly items: Array<MutableExecution> = []

  private static before(a: MutableExecution, b: MutableExecution): boolean {
    const finishA = a.submittedAt + a.durationMs
    const finishB = b.submittedAt + b.durationMs
    return finishA < finishB || (finishA === finishB && a.seq < b.seq)
  }

  push(item: MutableExecution): void {
    const items = this.items
    items.push(item)
    let index = items.length - 1
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (!FinishQueue.before(items[index]!, items[parent]!)) break
      ;[items[index], items[parent]] = [items[parent]!, items[index]!]
      index = parent
    }
  }

  peek(): MutableExecution | undefined {
    return this.items[0]
  }

  pop(): MutableExecution | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length > 0 && last !== undefined) {
      items[0] = last
      let index = 0
      for (;;) {
        const left = 2 * index + 1
        const right = left + 1
        let smallest = index
        if (left < items.length && FinishQueue.before(items[left]!, items[smallest]!)) smallest = left
        if (right < items.length && FinishQueue.before(items[right]!, items[smallest]!)) smallest = right
        if (smallest === index) break
        ;[items[index], items[smallest]] = [items[smallest]!, items[index]!]
        index = smallest
      }
    }
    return top
  }
}

export interface SimulatorModelOptions {
  readonly procs: ReadonlyArray<SimProc>
  readonly knobs?: SimulatorKnobs
}

/** The simulator's state. Not thread-safe by design: JS runs one handler at a time, and every method is synchronous. */
export class SimulatorModel {
  private knobsValue: SimulatorKnobs
  private random: () => number
  private readonly procs: ReadonlyMap<string, SimProc>
  private readonly executions = new Map<string, MutableExecution>()
  private readonly order: Array<MutableExecution> = []
  private readonly pending = new FinishQueue()
  private readonly vms: Array<MutableVm> = []
  private readonly liveVms = new Map<string, MutableVm>()
  private readonly createSubmissions = new Map<string, number>()
  private nextId = firstExecutionId
  private seq = 0
  private readonly counters = {
    calls: 0,
    submit: { accepted: 0, failed: 0, lost: 0, unknownProc: 0, malformed: 0 },
    status: { ok: 0, notFound: 0, badRequest: 0 },
    metadata: 0,
    ping: 0,
    rejected: { unauthorized: 0, forbidden: 0, outdatedClient: 0 }
  }

  constructor(options: SimulatorModelOptions) {
    this.knobsValue = options.knobs ?? defaultKnobs
    this.random = mulberry32(this.knobsValue.seed)
    this.procs = new Map(options.procs.map((proc) => [proc.name, proc]))
  }

  get knobs(): SimulatorKnobs {
    return this.knobsValue
  }

  get procList(): ReadonlyArray<SimProc> {
    return [...this.procs.values()]
  }

  proc(name: string): SimProc | undefined {
    return this.procs.get(name)
  }

  configure(patch: KnobsPatch): SimulatorKnobs {
    this.knobsValue = applyPatch(this.knobsValue, patch)
    if (patch.seed !== undefined) this.random = mulberry32(patch.seed)
    return this.knobsValue
  }

  /** Counts one call; `key` picks the counter. */
  count(key: "metadata" | "ping" | "unauthorized" | "forbidden" | "outdatedClient" | "malformed" | "statusBadRequest"): void {
    switch (key) {
      case "metadata": this.counters.metadata++; break
      case "ping": this.counters.ping++; break
      case "unauthorized": this.counters.rejected.unauthorized++; break
      case "forbidden": this.counters.rejected.forbidden++; break
      case "outdatedClient": this.counters.rejected.outdatedClient++; break
      case "malformed": this.counters.submit.malformed++; break
      case "statusBadRequest": this.counters.status.badRequest++; break
    }
  }

  countCall(): void {
    this.counters.calls++
  }

  /** `POST /execution` after the request has been read and authenticated. */
  submit(now: number, request: { readonly proc: string; readonly args: Readonly<Record<string, string>>; readonly emailId: string }): SubmitResult {
    this.advance(now)
    const proc = this.procs.get(request.proc)
    if (proc === undefined) {
      this.counters.submit.unknownProc++
      return { _tag: "UnknownProc", proc: request.proc }
    }
    // Always five draws per POST, so one knob's value does not shift the others' sequence.
    const draws = [this.random(), this.random(), this.random(), this.random(), this.random()] as const
    const knobs = this.knobsValue
    if (draws[0] < knobs.failureRate) {
      this.counters.submit.failed++
      return { _tag: "Failed" }
    }
    const lost = draws[1] < knobs.lostResponseRate
    const outcome: Outcome = draws[2] < knobs.stuckRate ? "stuck" : draws[3] < knobs.executionFailureRate ? "failure" : "success"
    this.nextId += 1n
    const id = this.nextId.toString()
    const vmName = request.args["VM_NAME"] ?? null
    const execution: MutableExecution = {
      id,
      seq: this.seq++,
      proc,
      vmName,
      emailId: request.emailId,
      kubeName: `proctor-${Math.floor(draws[4] * 0xffffffff).toString(16).padStart(8, "0")}-${(this.seq).toString(36)}`,
      submittedAt: now,
      durationMs: knobs.durationMs[proc.kind],
      outcome,
      failureStatus: failureStatesDrawn[Math.floor(draws[4] * failureStatesDrawn.length)]!,
      responseLost: lost,
      finishedAt: null,
      finalStatus: null,
      effect: null
    }
    this.executions.set(id, execution)
    this.order.push(execution)
    if (outcome !== "stuck") this.pending.push(execution)
    if (proc.kind === "create" && vmName !== null) {
      this.createSubmissions.set(vmName, (this.createSubmissions.get(vmName) ?? 0) + 1)
    }
    if (lost) this.counters.submit.lost++
    else this.counters.submit.accepted++
    // Proctor answers with the state it stored on submission, whatever happens next.
    return { _tag: "Accepted", execution: this.view(execution, now, "CREATED"), lost }
  }

  /** `GET /execution/{id}/status`; undefined for an unknown id. */
  status(now: number, id: string): ExecutionView | undefined {
    this.advance(now)
    const execution = this.executions.get(id)
    if (execution === undefined) {
      this.counters.status.notFound++
      return undefined
    }
    this.counters.status.ok++
    return this.view(execution, now)
  }

  ledger(now: number): SimulatorLedger {
    this.advance(now)
    return {
      now,
      vms: this.vms.map((vm) => ({
        name: vm.name,
        proc: vm.proc,
        createdAt: vm.createdAt,
        createdBy: vm.createdBy,
        destroyedAt: vm.destroyedAt,
        destroyedBy: vm.destroyedBy,
        createSubmissions: this.createSubmissions.get(vm.name) ?? 0
      })),
      executions: this.order.map((execution) => ({
        id: execution.id,
        proc: execution.proc.name,
        kind: execution.proc.kind,
        vmName: execution.vmName,
        emailId: execution.emailId,
        submittedAt: execution.submittedAt,
        finishedAt: execution.finishedAt,
        status: this.currentStatus(execution, now),
        stuck: execution.outcome === "stuck",
        responseLost: execution.responseLost,
        effect: execution.effect
      }))
    }
  }

  stats(): SimulatorStats {
    const counters = this.counters
    return {
      calls: counters.calls,
      submit: { ...counters.submit },
      status: { ...counters.status },
      metadata: counters.metadata,
      ping: counters.ping,
      rejected: { ...counters.rejected }
    }
  }

  /** Applies, in finish-time order, every execution that has ended by `now`. */
  advance(now: number): void {
    for (let next = this.pending.peek(); next !== undefined && next.submittedAt + next.durationMs <= now; next = this.pending.peek()) {
      this.pending.pop()
      this.finish(next, next.submittedAt + next.durationMs)
    }
  }

  private finish(execution: MutableExecution, at: number): void {
    execution.finishedAt = at
    if (execution.outcome === "failure") {
      execution.finalStatus = execution.failureStatus
      execution.effect = "none"
      return
    }
    const name = execution.vmName
    // A proc without VM_NAME does not know what to act on: its script fails.
    if (name === null) {
      execution.finalStatus = "POD_FAILED"
      execution.effect = "none"
      return
    }
    const live = this.liveVms.get(name)
    switch (execution.proc.kind) {
      case "create": {
        if (live === undefined) {
          const vm: MutableVm = { name, proc: execution.proc.name, createdAt: at, createdBy: execution.id, destroyedAt: null, destroyedBy: null }
          this.vms.push(vm)
          this.liveVms.set(name, vm)
          execution.effect = "created"
        } else {
          execution.effect = "none"
        }
        execution.finalStatus = "FINISHED"
        return
      }
      case "destroy": {
        if (live !== undefined) {
          live.destroyedAt = at
          live.destroyedBy = execution.id
          this.liveVms.delete(name)
          execution.effect = "destroyed"
        } else {
          execution.effect = "none"
        }
        execution.finalStatus = "FINISHED"
        return
      }
      case "check": {
        execution.finalStatus = live === undefined ? "POD_FAILED" : "FINISHED"
        execution.effect = "none"
        return
      }
    }
  }

  private currentStatus(execution: MutableExecution, now: number): string {
    if (execution.finalStatus !== null) return execution.finalStatus
    if (execution.outcome === "stuck") return "CREATED"
    const phase = phaseAt(now - execution.submittedAt, execution.durationMs)
    // advance() has run, so DONE without a final status cannot happen; CREATED is the safe reading.
    return phase === "DONE" ? "CREATED" : phase
  }

  private view(execution: MutableExecution, now: number, status?: string): ExecutionView {
    const current = status ?? this.currentStatus(execution, now)
    const updatedAt = execution.finishedAt !== null
      ? execution.finishedAt
      : execution.outcome === "stuck" || status !== undefined
      ? execution.submittedAt
      : phaseStart(phaseAt(now - execution.submittedAt, execution.durationMs), execution.submittedAt, execution.durationMs)
    return {
      id: execution.id,
      jobName: execution.proc.name,
      name: execution.kubeName,
      imageTag: `fleet-sim/${execution.proc.name}:latest`,
      createdAt: formatProctorTime(execution.submittedAt),
      updatedAt: formatProctorTime(Math.floor(updatedAt)),
      status: current
    }
  }
}
