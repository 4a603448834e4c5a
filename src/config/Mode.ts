import { Config } from "effect"

/**
 * How fleet runs. `development` (the default) may fall back to an embedded database and the
 * bundled proctor simulator; `production` (FLEET_MODE=production) never does: a missing
 * DATABASE_URL or PROCTOR_URL is a start-up error.
 */
export type Mode = "development" | "production"

export const ModeConfig: Config.Config<Mode> = Config.literal("development", "production")("FLEET_MODE").pipe(
  Config.withDefault("development" as const)
)
