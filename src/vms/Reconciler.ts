import { Config, Duration, Effect, FiberSet, Layer, Option, Ref } from "effect"
import { randomUUID } from "node:crypto"
import { durationSetting } from "../config/Settings.js"
import { makeGroupWriter } from "../common/GroupWriter.js"
import { reconcilerLag } from "../metrics/Metrics.js"
import { classifyStatus, ExecutionId, parseProctorTime } from "../proctor/Domain.js"
import { ProctorClient } from "../proctor/ProctorClient.js"
import { RetryPolicy, retryTransient } from "../proctor/Retry.js"
import { Handoff } from "./Handoff.js"
import { afterPoll, afterSubmit, type FollowPolicy, type PollOutcome, type SubmitOutcome, TypicalDurations } from "./Following.js"
import { type ClaimedExecution, type Outcome, VmRepo } from "./Repo.js"
import { vmStateFor } from "./StateMachine.js"
import { VmSettled, Wakeup } from "./Wakeup.js"

const millis = (name: string, fallback: Duration.DurationInput) =>
  durationSetting(name).pipe(Config.withDefault(Duration.decode(fallback)), Config.map(Duration.toMillis))

export const ReconcilerConfig = Config.all({
  /** Executions one controller handles at once (each is one proctor call at a time). */
  concurrency: Config.integer("FLEET_RECONCILER_CONCURRENCY").pipe(
    Config.validate({ message: "expected 0 (follow nothing: the API alone) or more executions at once", validation: (count) => count >= 0 }),
    Config.withDefault(64)
  ),
  /** How long a claimed execution stays with this controller before another may take it over. */
  leaseMs: millis("FLEET_LEASE", "1 minute"),
  /** Longest sleep when nothing is due. */
  idleMs: millis("FLEET_RECONCILE_INTERVAL", "1 second"),
  follow: Config.all({
    pollInitialMs: millis("FLEET_POLL_INITIAL", "1 second"),
    pollMaxMs: millis("FLEET_POLL_MAX", "30 seconds"),
    deadlineMs: millis("FLEET_EXECUTION_DEADLINE", "30 minutes"),
    maxSubmissions: Config.integer("FLEET_MAX_SUBMISSIONS").pipe(
      Config.validate({ message: "expected at least 1 submission", validation: (count) => count >= 1 }),
      Config.withDefault(10)
    ),
    resubmitDelayMs: millis("FLEET_RESUBMIT_DELAY", "30 seconds")
  }) satisfies Config.Config<FollowPolicy>,
  retry: RetryPolicy.config
})
export type ReconcilerSettings = Config.Config.Success<typeof ReconcilerConfig>

/**
 * Follows every due proctor execution: submits the ones written but not sent (again, with the
 * same VM name, after a crash or a lost answer), polls the running ones with backoff, enforces
 * the deadline, and moves each VM through its state machine. Level-triggered: it acts on what
 * the database says is due, never on having seen an event.
 */
export class Reconciler extends Effect.Service<Reconciler>()("fleet/Reconciler", {
  scoped: Effect.gen(function* () {
    const repo = yield* VmRepo
    const proctor = yield* ProctorClient
    const wakeup = yield* Wakeup
    const handoff = yield* Handoff
    const settings = yield* ReconcilerConfig
    const settled = yield* Effect.serviceOption(VmSettled)
    const controllerId = randomUUID()
    const inFlight = yield* Ref.make(0)
    // Handlers live as long as the reconciler: closing it interrupts them (the database keeps their state).
    const handlers = yield* FiberSet.make()
    // When the loop means to wake next (epoch ms; +Infinity while it is awake): a handler that
    // schedules an execution earlier than that wakes it, and only then.
    let wakeAt = Number.POSITIVE_INFINITY
    // The earliest time an execution this controller rescheduled is due again. Other controllers'
    // executions, and ones whose controller died, are found by the idle look (FLEET_RECONCILE_INTERVAL);
    // new ones written in this process come with a kick.
    let nextDueAt = Number.POSITIVE_INFINITY
    const unknownStatuses = new Set<string>()
    // How long each proc's executions take (proctor's own timestamps), to poll them when they are likely done.
    const typical = new TypicalDurations()

    // Outcomes are written in groups (one statement per group, at most one outcome per VM in it).
    // An update's dueInMs counts from when it was decided: the time it waited to be written is
    // taken off, so that a busy writer does not delay the next look at the execution.
    interface Written {
      readonly deadlineAt: Date | null
      readonly dueInMs: number | null
    }
    interface Decided {
      readonly outcome: Outcome
      readonly decidedAt: number
    }
    /** None when the claim was lost; else the execution's deadline and the delay the database was given. */
    const writeOutcome = yield* makeGroupWriter<Decided, Option.Option<Written>, never>({
      key: ({ outcome }) => outcome.execution.vmId,
      write: (group) => {
        const writingAt = Date.now()
        const adjusted = group.map(({ decidedAt, outcome }) => {
          const dueInMs = outcome.update.dueInMs
          return dueInMs === null ? outcome : { ...outcome, update: { ...outcome.update, dueInMs: Math.max(0, dueInMs - (writingAt - decidedAt)) } }
        })
        // A creation that succeeded may start the swap waiting for its VM, and a decommission that
        // succeeded the creation queued behind it: they come to this reconciler claimed.
        const mayStartWaiting = adjusted.filter(({ execution, update }) => execution.kind !== "check" && update.state === "succeeded").length
        return handoff.writing((handoffs) =>
          Effect.gen(function* () {
            const { recorded, waitingClaimed, waitingStarted } = yield* repo.recordOutcomes(adjusted, yield* handoffs.claim(mayStartWaiting))
            yield* handoffs.wrote(waitingStarted, waitingClaimed)
            return adjusted.map((outcome): Option.Option<Written> =>
              Option.map(Option.fromNullable(recorded.get(outcome.execution.id)), ({ deadlineAt }) => ({ deadlineAt, dueInMs: outcome.update.dueInMs })))
          })
        )
      }
    })
    /** Writes an outcome, decided at `decidedAt`, with the next group. */
    const record = (outcome: Outcome, decidedAt: number) => writeOutcome({ outcome, decidedAt })

    const submit = (execution: ClaimedExecution) =>
      proctor.submit({ proc: execution.proc, args: execution.args, emailId: execution.emailId }).pipe(
        retryTransient(settings.retry),
        Effect.map((accepted): SubmitOutcome => ({ _tag: "Accepted", proctorId: accepted.id, status: accepted.status })),
        Effect.catchTags({
          ProctorPermanentError: (error) => Effect.succeed<SubmitOutcome>({ _tag: "Rejected", reason: error.reason }),
          ProctorTransientError: (error) => Effect.succeed<SubmitOutcome>({ _tag: "Unavailable", reason: error.reason })
        }),
        Effect.map((outcome) => afterSubmit(outcome, execution, settings.follow, Math.random(), typical.typicalMs(execution.proc, execution.kind)))
      )

    const poll = (execution: ClaimedExecution) =>
      (execution.proctorId === null
        ? Effect.succeed<PollOutcome>({ _tag: "NotFound" })
        : proctor.status(ExecutionId.make(execution.proctorId)).pipe(
          Effect.map((answer): PollOutcome => {
            const phase = classifyStatus(answer.status)
            if (phase !== "succeeded") return { _tag: "Status", status: answer.status, phase }
            const ranMs = (parseProctorTime(answer.updatedAt)?.getTime() ?? Number.NaN) - (parseProctorTime(answer.createdAt)?.getTime() ?? Number.NaN)
            return Number.isFinite(ranMs) ? { _tag: "Status", status: answer.status, phase, ranMs } : { _tag: "Status", status: answer.status, phase }
          }),
          Effect.catchTags({
            ExecutionNotFound: () => Effect.succeed<PollOutcome>({ _tag: "NotFound" }),
            ProctorTransientError: (error) => Effect.succeed<PollOutcome>({ _tag: "Unreachable", reason: error.reason }),
            ProctorPermanentError: (error) => Effect.succeed<PollOutcome>({ _tag: "Unreachable", reason: error.reason })
          })
        )).pipe(
          Effect.tap((outcome) =>
            outcome._tag === "Status" && outcome.phase === "unknown" && !unknownStatuses.has(outcome.status)
              ? Effect.sync(() => unknownStatuses.add(outcome.status)).pipe(
                Effect.zipRight(Effect.logWarning(`proctor reported an unknown status ${outcome.status}; treating it as in progress`))
              )
              : Effect.void
          ),
          Effect.tap((outcome) => {
            if (outcome._tag === "Status" && outcome.ranMs !== undefined) typical.record(execution.proc, execution.kind, outcome.ranMs)
          }),
          Effect.map((outcome) => afterPoll(outcome, execution, execution.claimedAt, settings.follow, Math.random(), typical.typicalMs(execution.proc, execution.kind)))
        )

    /** Gives back capacity; giving back what the loop was waiting for wakes it. */
    const release = (slots: number) =>
      slots <= 0
        ? Effect.void
        : Effect.flatMap(Ref.getAndUpdate(inFlight, (n) => n - slots), (before) => before >= settings.concurrency ? wakeup.kick : Effect.void)

    /** Takes up to `wanted` slots of capacity; how many it took. */
    const reserve = (wanted: number) =>
      Ref.modify(inFlight, (n) => {
        const slots = Math.max(0, Math.min(wanted, settings.concurrency - n))
        return [slots, n + slots]
      })

    /** While `effect` runs, the execution it waits for does not count against the concurrency. */
    const outsideCapacity = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        release(1),
        () => effect,
        () => Ref.update(inFlight, (n) => n + 1)
      )

    /**
     * One claimed execution: a proctor exchange and its recorded decision, again and again for as
     * long as the next look is due within a lease. Those looks are made here, the claim kept (and
     * the lease pushed past each one), instead of by whichever controller claims the execution
     * when it is due: the wake-up and the claim's round trip are saved, and the look comes when it
     * is due. A later one is left to the database (the claim is given up).
     */
    const handle = (claimed: ClaimedExecution, token: string) =>
      Effect.gen(function* () {
        let execution = claimed
        while (true) {
          const update = execution.state === "running" ? yield* poll(execution) : yield* submit(execution)
          const vmState = vmStateFor(execution.kind, update.state)
          // Only a poll is followed here: a (re)submission is counted by the claim that starts it.
          const keep = update.state === "running" && update.dueInMs !== null && update.dueInMs <= settings.leaseMs
          const decidedAt = Date.now()
          const recorded = yield* record({ execution, token, update, vmState, ...(keep ? { keepClaimMs: settings.leaseMs } : {}) }, decidedAt)
          if (Option.isNone(recorded)) {
            return yield* Effect.logWarning("lost the claim on this execution (lease expired); another controller has it")
          }
          if (update.state !== execution.state || update.proctorId !== undefined) {
            if (update.dueInMs === null && Option.isSome(settled)) yield* settled.value.kick
            // Outcomes at info (a failure as a warning); the steps in between at debug: the events table has them all.
            const level = update.state === "failed" || update.state === "timed_out"
              ? Effect.logWarning
              : update.dueInMs === null ? Effect.logInfo : Effect.logDebug
            yield* level(`${execution.kind} execution ${execution.state} → ${update.state}: ${update.reason}`)
          } else {
            yield* Effect.logDebug(update.reason)
          }
          const { deadlineAt, dueInMs } = recorded.value
          if (dueInMs === null || update.dueInMs === null) return
          if (!keep) {
            // The database counted the delay from no later than now: waking then finds the execution due.
            const dueAt = Date.now() + dueInMs
            nextDueAt = Math.min(nextDueAt, dueAt)
            if (dueAt < wakeAt) yield* wakeup.kick
            return
          }
          // Held, the next look needs no database: it comes when it was decided to, the write's time included.
          const dueAt = decidedAt + update.dueInMs
          yield* outsideCapacity(Effect.sleep(Duration.millis(Math.max(0, dueAt - Date.now()))))
          execution = {
            ...execution,
            previousState: execution.state,
            state: update.state,
            proctorId: update.proctorId ?? execution.proctorId,
            proctorStatus: update.proctorStatus ?? execution.proctorStatus,
            polls: update.polls,
            deadlineAt,
            wasDueAt: new Date(dueAt),
            claimedAt: new Date()
          }
        }
      }).pipe(
        // Stopped meanwhile (most often while waiting for the next look, but also while an outcome
        // that keeps the claim was being written): the claim is given up, so that the next
        // controller need not wait out the lease. Only a claim this handler still holds is touched.
        Effect.onInterrupt(() => repo.releaseClaim(claimed.id, token)),
        Effect.annotateLogs({
          vm: claimed.vmName,
          requestId: claimed.requestId ?? undefined,
          execution: claimed.id,
          proc: claimed.proc
        }),
        Effect.catchAllCause((cause) => Effect.logError("handling an execution failed; it will be retried after its lease", cause))
      )

    /** Handles claimed executions, each in a slot already taken for it, which it gives back when done. */
    const follow = (token: string, executions: ReadonlyArray<ClaimedExecution>) =>
      Effect.forEach(executions, (execution) => {
        reconcilerLag.unsafeUpdate(Math.max(0, execution.claimedAt.getTime() - execution.wasDueAt.getTime()) / 1000, [])
        // Interruptible even when started from a finalizer (a handoff after a write's commit is one).
        return handle(execution, token).pipe(Effect.ensuring(release(1)), Effect.interruptible, FiberSet.run(handlers))
      }, { discard: true })

    /** Claims what is due (up to the free capacity) and starts handling it; the number claimed and the capacity it had. */
    const claimAndStart = Effect.gen(function* () {
      const free = settings.concurrency - (yield* Ref.get(inFlight))
      if (free <= 0) return { claimed: 0, free }
      const token = randomUUID()
      const claimed = yield* repo.claimDue(token, free, settings.leaseMs)
      yield* Ref.update(inFlight, (n) => n + claimed.length)
      yield* follow(token, claimed)
      return { claimed: claimed.length, free }
    })

    /**
     * Until interrupted: claim, and when nothing more is due, sleep until the next due time or a
     * kick. Meanwhile, executions written in this process come claimed for it (see Handoff).
     */
    const loop = Effect.gen(function* () {
      yield* Effect.logInfo(`Reconciler started (controller ${controllerId}, up to ${settings.concurrency} executions at once)`)
      while (true) {
        wakeAt = Number.POSITIVE_INFINITY
        const { claimed, free } = yield* claimAndStart.pipe(
          Effect.catchAllCause((cause) => Effect.as(Effect.logError("claiming due executions failed", cause), { claimed: 0, free: 0 }))
        )
        // A full claim may have left more due: claim again. Otherwise everything due was taken.
        if (claimed > 0 && claimed >= free) continue
        const now = Date.now()
        // Everything due by now was just claimed (or waits for capacity, which a finishing handler frees with a kick).
        if (nextDueAt <= now) nextDueAt = Number.POSITIVE_INFINITY
        const next = Math.min(settings.idleMs, Math.max(5, nextDueAt - now))
        wakeAt = Date.now() + next
        yield* wakeup.wait(Duration.millis(next))
      }
    })
    const run = handoff.offering({ leaseMs: settings.leaseMs, reserve, release, adopt: follow }, loop)

    return { controllerId, run, inFlight: Ref.get(inFlight) } as const
  }),
  dependencies: [VmRepo.Default, Wakeup.Default, Handoff.Default]
}) {}

/** Runs the reconciler loop for as long as the layer is alive. */
export const ReconcilerLoop = Layer.scopedDiscard(
  Effect.flatMap(Reconciler, (reconciler) => Effect.forkScoped(reconciler.run))
)
