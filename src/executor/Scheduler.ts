import { SqlClient } from "@effect/sql"
import { Cron } from "croner"
import { Config, Duration, Effect, Layer } from "effect"
import { durationSetting } from "../config/Settings.js"
import { PlanService } from "../planner/PlanService.js"
import { PlanId } from "../planner/Records.js"
import { RunsChanged } from "./Executor.js"
import { Runs } from "./Runs.js"

export const SchedulerConfig = Config.all({
  intervalMs: durationSetting("FLEET_SCHEDULER_INTERVAL").pipe(Config.withDefault(Duration.seconds(30)), Config.map(Duration.toMillis))
})

/** The scheduler's advisory lock: one controller at a time looks at the schedules. */
const schedulerLock = 0x666c_6565 // "flee"

/** The latest fire time of a cron at or before `now`, in its time zone. */
export const latestFire = (cron: string, timeZone: string, now: Date): Date | undefined =>
  new Cron(cron, { timezone: timeZone, paused: true, mode: "5-or-6-parts" }).previousRuns(1, now)[0]

/**
 * Runs plans that have a schedule, on their cron, inside their window. The newest saved plan of
 * each name is the scheduled one. For each, only the latest fire time counts: after downtime a
 * missed fire runs once, not once per missed tick, and only while its window is open; a fire from
 * before the plan was saved does not count. A fire
 * starts a run (the plan recomputed against the current inventory, its report stored with the
 * run) unless one exists for that plan and fire time — the unique key that makes each fire run
 * once across controllers — or resumes the plan's run that the end of a window paused.
 */
export class Scheduler extends Effect.Service<Scheduler>()("fleet/Scheduler", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const plans = yield* PlanService
    const runs = yield* Runs
    const changed = yield* RunsChanged
    const settings = yield* SchedulerConfig

    // The newest plan of each name, if it has a schedule: a newer plan without one turns it off.
    const scheduledPlans = sql<{ id: string; name: string }>`
      select id, name from (
        select distinct on (name) id, name, spec from plans order by name, created_at desc, id desc
      ) newest where spec ? 'schedule'`

    const fire = (planId: PlanId, now: Date) =>
      Effect.gen(function* () {
        const saved = yield* plans.get(planId)
        const schedule = saved.spec.schedule
        if (schedule === undefined) return
        const at = latestFire(schedule.cron, schedule.timeZone, now)
        // A fire from before the plan was saved is not its fire: a plan saved inside an open window
        // waits for the next one, as its report and `fleet plan` said ("next at …").
        if (at === undefined || at.getTime() < saved.createdAt.getTime()) return
        const windowEndsAt = new Date(at.getTime() + schedule.window * 1000)
        if (now.getTime() >= windowEndsAt.getTime()) return
        const [handled] = yield* sql<{ count: number }>`select count(*)::int as count from runs where plan_id = ${planId} and fire_at = ${at}`
        if ((handled?.count ?? 0) > 0) return
        const [waiting] = yield* sql<{ id: string }>`
          select id from runs where plan_id = ${planId} and state = 'paused' and pause_reason = 'window' order by id desc limit 1`
        if (waiting !== undefined) {
          yield* sql`update runs set state = 'running', pause_reason = null, fire_at = ${at}, window_ends_at = ${windowEndsAt},
                       reason = ${`the window of ${at.toISOString()} opened`}, updated_at = now() where id = ${waiting.id}`
          yield* sql`insert into events ${sql.insert({ actor: "fleet", kind: "run.state", runId: waiting.id, fromState: "paused", toState: "running", reason: `the schedule window of ${at.toISOString()} opened` })}`
          yield* Effect.logInfo(`Resumed run ${waiting.id} of ${saved.name} in the window of ${at.toISOString()}`)
          return
        }
        const [busy] = yield* sql<{ id: string }>`
          select id from runs where plan_id = ${planId} and state in ('running', 'paused', 'cancelling', 'aborting') limit 1`
        if (busy !== undefined) return
        const fresh = yield* plans.dryRun(saved.specText, `schedule of ${saved.name}`, now)
        const started = yield* runs.start(fresh, { planId, trigger: "schedule", fireAt: at, windowEndsAt }, { email: saved.createdBy })
        yield* Effect.logInfo(`Scheduled run ${started.id} of ${saved.name} for the fire of ${at.toISOString()}: ${fresh.totals.steps} step(s)`)
      }).pipe(
        Effect.catchAll((error) => Effect.logWarning(`The scheduled plan ${planId} could not start: ${error.message}`)),
        Effect.annotateLogs({ plan: planId })
      )

    /** One look at every schedule, if no other controller is looking. */
    const tick = sql.withTransaction(
      Effect.gen(function* () {
        const [lock] = yield* sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${schedulerLock}) as locked`
        if (lock?.locked !== true) return
        const now = new Date()
        for (const plan of yield* scheduledPlans) yield* fire(PlanId.make(plan.id), now)
      })
    ).pipe(
      Effect.zipRight(changed.kick),
      Effect.catchAllCause((cause) => Effect.logError("the scheduler's tick failed", cause))
    )

    const run = Effect.gen(function* () {
      yield* Effect.logInfo(`Scheduler started (every ${Duration.format(Duration.millis(settings.intervalMs))})`)
      while (true) {
        yield* tick
        yield* Effect.sleep(Duration.millis(settings.intervalMs))
      }
    })
    return { tick, run } as const
  })
}) {}

export const SchedulerLoop = Layer.scopedDiscard(Effect.flatMap(Scheduler, (scheduler) => Effect.forkScoped(scheduler.run)))
