import { Options } from "@effect/cli"
import { Config, Effect, Option } from "effect"
import { FleetClient } from "../client/Client.js"

/** `--url` / FLEET_URL and `--token` / FLEET_TOKEN: how CLI commands reach a running fleet. */
export const connectionOptions = {
  url: Options.text("url").pipe(
    Options.withDescription("fleet's base URL (env FLEET_URL)"),
    Options.withFallbackConfig(Config.string("FLEET_URL")),
    Options.withDefault("http://127.0.0.1:8080")
  ),
  token: Options.redacted("token").pipe(
    Options.withDescription("API token (env FLEET_TOKEN)"),
    Options.withFallbackConfig(Config.redacted("FLEET_TOKEN")),
    Options.optional
  )
}

export const connect = (options: { readonly url: string; readonly token: Option.Option<import("effect").Redacted.Redacted<string>> }) =>
  FleetClient.make({ baseUrl: options.url, token: Option.getOrUndefined(options.token) })

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print JSON instead of a table"))

/** Exits non-zero with one readable line for the errors a CLI user can act on. */
export const explainFailure = <A, R>(effect: Effect.Effect<A, unknown, R>) =>
  effect.pipe(
    Effect.catchAll((error) =>
      Effect.gen(function* () {
        const described = typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)
        const issues = typeof error === "object" && error !== null && "issues" in error && Array.isArray(error.issues)
          ? (error.issues as ReadonlyArray<{ path: ReadonlyArray<unknown>; message: string }>)
            .map((issue) => `  - ${issue.path.length > 0 ? `${issue.path.join(".")}: ` : ""}${issue.message}`)
          : []
        yield* Effect.sync(() => {
          process.stderr.write(`error: ${described}\n${issues.join("\n")}${issues.length > 0 ? "\n" : ""}`)
          process.exitCode = 1
        })
      })
    )
  )
