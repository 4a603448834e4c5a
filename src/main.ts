import { NodeContext } from "@effect/platform-node"
import { Config, ConfigError, Effect, Either, Exit, Layer, Option } from "effect"
import { AuthLive } from "./auth/Authentication.js"
import { DemoAdminToken } from "./auth/DemoToken.js"
import { Catalog } from "./catalog/Catalog.js"
import { ModeConfig } from "./config/Mode.js"
import { DatabaseConfig, DatabaseLive } from "./db/Database.js"
import { migrate } from "./db/Migrations.js"
import { HttpConfig, HttpServerLive } from "./http/Server.js"
import { IdempotencyConfig } from "./http/Idempotency.js"
import { BodyLimitConfig } from "./http/Limits.js"
import { RateLimitConfig } from "./http/RateLimit.js"
import { TokenCacheConfig } from "./auth/Tokens.js"
import { LogConfig, LoggerLive } from "./logging/Logger.js"
import { ProctorClient, ProctorConfig, ProctorUrlConfig } from "./proctor/ProctorClient.js"
import { ProctorSimulator } from "./proctor/Simulator.js"
import { Reconciler, ReconcilerConfig, ReconcilerLoop } from "./vms/Reconciler.js"
import { VmRepo } from "./vms/Repo.js"
import { VmRequests, VmRequestsConfig } from "./vms/VmRequests.js"
import { Handoff } from "./vms/Handoff.js"
import { VmSettled, Wakeup } from "./vms/Wakeup.js"
import { Executor, ExecutorConfig, ExecutorLoop, RunsChanged } from "./executor/Executor.js"
import { Runs } from "./executor/Runs.js"
import { Replacements } from "./executor/Replacements.js"
import { RunRepo } from "./executor/Repo.js"
import { Scheduler, SchedulerConfig, SchedulerLoop } from "./executor/Scheduler.js"
import { PlanService } from "./planner/PlanService.js"
import { Deprecations, DeprecationsConfig } from "./planner/Deprecations.js"
import { PlanRepo } from "./planner/Repo.js"
import { InventoryRepo } from "./inventory/Repo.js"

/**
 * Every setting `fleet serve` reads, read before anything starts (the embedded database is not
 * created, no migration runs, no port is taken), so that one answer lists every bad one, and in
 * production mode every required one that is missing.
 */
export const SettingsChecked = Layer.effectDiscard(
  Effect.gen(function* () {
    const [mode, database, proctorUrl] = yield* Config.all([
      ModeConfig,
      DatabaseConfig,
      Config.option(ProctorUrlConfig),
      LogConfig,
      HttpConfig,
      BodyLimitConfig,
      RateLimitConfig,
      IdempotencyConfig,
      TokenCacheConfig,
      DeprecationsConfig,
      VmRequestsConfig,
      ReconcilerConfig,
      ExecutorConfig,
      SchedulerConfig
    ])
    // The rest of proctor's settings matter only with a proctor to reach (the bundled simulator takes none).
    if (Option.isSome(proctorUrl)) yield* ProctorConfig
    if (mode !== "production") return
    const missing = [
      ...(Option.isNone(database.url) ? [ConfigError.MissingData(["DATABASE_URL"], "required when FLEET_MODE=production")] : []),
      ...(Option.isNone(proctorUrl) ? [ConfigError.MissingData(["PROCTOR_URL"], "required when FLEET_MODE=production")] : [])
    ]
    if (missing.length > 0) return yield* Effect.fail(missing.reduce((all, error) => ConfigError.And(all, error)))
  })
)

/** Applies pending migrations before anything else touches the database. */
export const Migrated = Layer.effectDiscard(migrate)

/**
 * Proctor at PROCTOR_URL. Without it, development mode starts the bundled simulator in-process
 * (and says so loudly); production mode refuses to start.
 */
export const ProctorLive = Layer.unwrapScoped(
  Effect.gen(function* () {
    const url = yield* Config.option(Config.string("PROCTOR_URL"))
    if (Option.isSome(url)) return ProctorClient.layerConfig
    if ((yield* ModeConfig) === "production") {
      return yield* Effect.fail(ConfigError.MissingData(["PROCTOR_URL"], "PROCTOR_URL is required when FLEET_MODE=production"))
    }
    const catalog = yield* Catalog
    const simulator = yield* ProctorSimulator.start({
      procs: ProctorSimulator.procsFromCatalog(catalog),
      durationMs: { create: 4000, destroy: 2000, check: 500 }
    })
    yield* Effect.logWarning(
      `PROCTOR_URL is not set: VMs are SIMULATED by the bundled proctor simulator at ${simulator.url}; nothing real is created`
    )
    return ProctorClient.layerFrom({ url: simulator.url })
  })
)

/** Warns at start when proctor lacks a proc the catalog names (or cannot be asked). */
export const ProcCheck = Layer.effectDiscard(
  Effect.gen(function* () {
    const proctor = yield* ProctorClient
    const catalog = yield* Catalog
    const answer = yield* Effect.either(proctor.listProcs())
    if (Either.isLeft(answer)) {
      yield* Effect.logWarning(`Could not list proctor's procs (${answer.left.reason}); the catalog's procs were not checked`)
      return
    }
    const known = new Set(answer.right.map((proc) => proc.name))
    const missing = catalog.procNames.filter((name) => !known.has(name))
    if (missing.length > 0) {
      yield* Effect.logWarning(
        `proctor has no proc named ${missing.join(", ")} (from ${catalog.source}): requests that need them will fail`
      )
    } else {
      yield* Effect.logInfo(`All ${catalog.procNames.length} procs of the catalog exist in proctor`)
    }
  })
)

/**
 * The services behind the API and the reconciler, sharing one repository, one wake-up signal and
 * one handoff (executions written here go straight to this process's reconciler). The deprecation
 * policies are here, below both VM requests (which check against them) and the planner: one
 * instance, so that a policy changed through this process is seen by its next VM request.
 */
export const VmServicesLive = Layer.mergeAll(VmRequests.DefaultWithoutDependencies, Reconciler.DefaultWithoutDependencies).pipe(
  Layer.provideMerge(Handoff.DefaultWithoutDependencies),
  Layer.provideMerge(Layer.mergeAll(VmRepo.Default, Wakeup.Default, VmSettled.layer, Deprecations.Default))
)

/**
 * The planner's and the executor's services on top of the VM services: runs share the VM
 * creation path; on-demand replacements and schedules save and verify plans.
 */
export const ServicesLive = Layer.mergeAll(Executor.Default, Replacements.Default, Scheduler.Default).pipe(
  Layer.provideMerge(Layer.mergeAll(Runs.Default, PlanService.DefaultWithoutDependencies)),
  Layer.provideMerge(Layer.mergeAll(InventoryRepo.Default, PlanRepo.Default)),
  Layer.provideMerge(Layer.mergeAll(RunsChanged.layer, RunRepo.Default)),
  Layer.provideMerge(VmServicesLive)
)

/** What every controller process needs below the services: database (migrated), catalog, proctor. */
export const InfrastructureLive = Layer.mergeAll(ProctorLive, Migrated).pipe(
  Layer.provideMerge(Catalog.layer),
  Layer.provideMerge(DatabaseLive),
  Layer.provideMerge(NodeContext.layer)
)

/**
 * Says that the controller is stopping, and why, as its shutdown begins: the requests and
 * executions under way are then finished or given up (their claims released) before it exits.
 */
export const StopNotice = Layer.scopedDiscard(
  Effect.addFinalizer((exit) =>
    Effect.logInfo(
      Exit.isInterrupted(exit)
        ? "Stopping (interrupted: SIGINT or SIGTERM): finishing what is under way"
        : "Stopping: finishing what is under way"
    )
  )
)

/**
 * `fleet serve`: the HTTP API and the loops (reconciler, executor, scheduler), with the start-up
 * proc check and the demo token. Spans are off: fleet exports no traces, and every SQL statement
 * and proctor call would otherwise build one (with a captured stack) only to drop it.
 */
export const ControllerLive = Layer.mergeAll(HttpServerLive, ReconcilerLoop, ExecutorLoop, SchedulerLoop, ProcCheck, DemoAdminToken).pipe(
  // Once everything has started: a start that fails (a port taken) is said as such, not as a stop.
  Layer.flatMap((started) => Layer.merge(Layer.succeedContext(started), StopNotice)),
  Layer.provide(AuthLive),
  Layer.provide(ServicesLive),
  Layer.provide(InfrastructureLive),
  Layer.provide(LoggerLive),
  Layer.provide(SettingsChecked),
  Layer.provide(Layer.setTracerEnabled(false))
)
