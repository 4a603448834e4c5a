/**
 * The database for CLI commands that work without a running fleet (`fleet plan`, `fleet plans`,
 * `fleet demo`): DATABASE_URL, or the embedded database under FLEET_DATA_DIR, migrated, with the
 * catalog, and logs on stderr (stdout is for the command's output: a report, JSON).
 * The embedded database refuses to open when another process has it open (see src/db/Embedded.ts).
 */
import { NodeContext } from "@effect/platform-node"
import { Config, Effect, Layer, LogLevel, Option } from "effect"
import { Catalog } from "../catalog/Catalog.js"
import { DatabaseLive } from "../db/Database.js"
import { migrate } from "../db/Migrations.js"
import { layerWith, makePino } from "../logging/Logger.js"

/** Logs to stderr, warnings and up unless LOG_LEVEL says otherwise. */
export const CliLoggerLive = Layer.unwrapEffect(
  Effect.map(Config.option(Config.logLevel("LOG_LEVEL")), (level) =>
    layerWith(makePino({ format: "pretty", destination: process.stderr }), Option.getOrElse(level, () => LogLevel.Warning)))
)

/** The migrated database (checked to be free when embedded), the catalog and Node's platform services. */
export const LocalDatabaseLive = Layer.effectDiscard(migrate).pipe(
  Layer.provideMerge(Catalog.layer),
  Layer.provideMerge(DatabaseLive),
  Layer.provideMerge(NodeContext.layer)
)
