import { Config, Duration, Effect, FiberSet, Layer, Ref } from "effect"
import { randomUUID } from "node:crypto"
import { classifyStatus, ExecutionId } from "../proctor/Domain.js"
import { ProctorClient } from "../proctor/ProctorClient.js"
import { RetryPolicy, retryTransient } from "../proctor/Retry.js"
import { afterPoll, afterSubmit, type FollowPolicy, type PollOutcome, type SubmitOutcome } from "./Following.js"
import { type ClaimedExecution, VmRepo } from "./Repo.js"
import { vmStateFor } from "./StateMachine.js"
import { Wakeup } from "./Wakeup.js"

const millis = (name: string, fallback: Duration.DurationInput) =>
  Config.duration(name).pipe(Config.withDefault(Duration.decode(fallback)), Config.map(Duration.toMillis))

export const ReconcilerConfig = Config.all({
  /** Executions one controller handles at once (each is one proctor call at a time). */
  concurrency: Config.integer("FLEET_RECONCILER_CONCURRENCY").pipe(Config.withDefault(64)),
  /** How long a claimed execution stays with this controller before another may take it over. */
  leaseMs: millis("FLEET_LEASE", "2 minutes"),
  /** Longest sleep when nothing is due. */
  idleMs: millis("FLEET_RECONCILE_INTERVAL", "1 second"),
  follow: Config.all({
    pollInitialMs: millis("FLEET_POLL_INITIAL", "1 second"),
    pollMaxMs: millis("FLEET_POLL_MAX", "30 seconds"),
    deadlineMs: millis("FLEET_EXECUTION_DEADLINE", "30 minutes"),
    maxSubmissions: Config.integer("FLEET_MAX_SUBMISSIONS").pipe(Config.withDefault(10)),
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
    const settings = yield* ReconcilerConfig
    const controllerId = randomUUID()
    const inFlight = yield* Ref.make(0)
    // Handlers live as long as the reconciler: closing it interrupts them (the database keeps their state).
    const handlers = yield* FiberSet.make()
    const unknownStatuses = new Set<string>()

    const submit = (execution: ClaimedExecution) =>
      proctor.submit({ proc: execution.proc, args: execution.args, emailId: execution.emailId }).pipe(
        retryTransient(settings.retry),
        Effect.map((accepted): SubmitOutcome => ({ _tag: "Accepted", proctorId: accepted.id, status: accepted.status })),
        Effect.catchTags({
          ProctorPermanentError: (error) => Effect.succeed<SubmitOutcome>({ _tag: "Rejected", reason: error.reason }),
          ProctorTransientError: (error) => Effect.succeed<SubmitOutcome>({ _tag: "Unavailable", reason: error.reason })
        }),
        Effect.map((outcome) => afterSubmit(outcome, execution, settings.follow, Math.random()))
      )

    const poll = (execution: ClaimedExecution) =>
      (execution.proctorId === null
        ? Effect.succeed<PollOutcome>({ _tag: "NotFound" })
        : proctor.status(ExecutionId.make(execution.proctorId)).pipe(
          Effect.map((answer): PollOutcome => ({ _tag: "Status", status: answer.status, phase: classifyStatus(answer.status) })),
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
          Effect.map((outcome) => afterPoll(outcome, execution, execution.claimedAt, settings.follow, Math.random()))
        )

    /** One claimed execution: one proctor exchange, one recorded decision. */
    const handle = (execution: ClaimedExecution, token: string) =>
      Effect.gen(function* () {
        const update = execution.state === "running" ? yield* poll(execution) : yield* submit(execution)
        const vmState = vmStateFor(execution.kind, update.state)
        const recorded = yield* repo.recordOutcome(execution, token, update, vmState)
        if (!recorded) {
          yield* Effect.logWarning("lost the claim on this execution (lease expired); another controller has it")
        } else if (update.state !== execution.state || update.proctorId !== undefined) {
          const level = update.state === "failed" || update.state === "timed_out" ? Effect.logWarning : Effect.logInfo
          yield* level(`${execution.kind} execution ${execution.state} → ${update.state}: ${update.reason}`)
        } else {
          yield* Effect.logDebug(update.reason)
        }
      }).pipe(
        Effect.annotateLogs({
          vm: execution.vmName,
          requestId: execution.requestId ?? undefined,
          execution: execution.id,
          proc: execution.proc
        }),
        Effect.catchAllCause((cause) => Effect.logError("handling an execution failed; it will be retried after its lease", cause))
      )

    /** Claims what is due (up to the free capacity) and starts handling it; the number claimed. */
    const claimAndStart = Effect.gen(function* () {
      const free = settings.concurrency - (yield* Ref.get(inFlight))
      if (free <= 0) return 0
      const token = randomUUID()
      const claimed = yield* repo.claimDue(token, free, settings.leaseMs)
      for (const execution of claimed) {
        yield* Ref.update(inFlight, (n) => n + 1)
        yield* handle(execution, token).pipe(
          Effect.ensuring(Effect.zipRight(Ref.update(inFlight, (n) => n - 1), wakeup.kick)),
          FiberSet.run(handlers)
        )
      }
      return claimed.length
    })

    /** Until interrupted: claim, and when nothing more is due, sleep until the next due time or a kick. */
    const run = Effect.gen(function* () {
      yield* Effect.logInfo(`Reconciler started (controller ${controllerId}, up to ${settings.concurrency} executions at once)`)
      while (true) {
        const claimed = yield* claimAndStart.pipe(
          Effect.catchAllCause((cause) => Effect.as(Effect.logError("claiming due executions failed", cause), 0))
        )
        if (claimed > 0) continue
        const busy = (yield* Ref.get(inFlight)) >= settings.concurrency
        const next = busy ? settings.idleMs : yield* repo.nextDueInMs.pipe(
          Effect.map((due) => due._tag === "Some" ? Math.min(settings.idleMs, Math.max(5, due.value)) : settings.idleMs),
          Effect.catchAllCause(() => Effect.succeed(settings.idleMs))
        )
        yield* wakeup.wait(Duration.millis(next))
      }
    })

    /** Handles everything due now and waits for it; for tests and one-shot tools. */
    const drainOnce = Effect.gen(function* () {
      const token = randomUUID()
      const claimed = yield* repo.claimDue(token, settings.concurrency, settings.leaseMs)
      yield* Effect.forEach(claimed, (execution) => handle(execution, token), { concurrency: "unbounded", discard: true })
      return claimed.length
    })

    return { controllerId, run, drainOnce, inFlight: Ref.get(inFlight) } as const
  }),
  dependencies: [VmRepo.Default, Wakeup.Default]
}) {}

/** Runs the reconciler loop for as long as the layer is alive. */
export const ReconcilerLoop = Layer.scopedDiscard(
  Effect.flatMap(Reconciler, (reconciler) => Effect.forkScoped(reconciler.run))
)
