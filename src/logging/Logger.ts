import { Cause, Config, Effect, HashMap, Layer, List, Logger, LogLevel } from "effect"
import pino from "pino"
import pretty from "pino-pretty"
import type { Writable } from "node:stream"

/** Field names whose values are never written, wherever they appear in a log line. */
const redactPaths = [
  "accessToken", "*.accessToken", "access_token", "*.access_token",
  "authorization", "*.authorization", "Authorization", "*.Authorization",
  "password", "*.password", "token", "*.token", "secret", "*.secret",
  "headers[\"access-token\"]", "headers[\"authorization\"]"
]

const pinoLevel = (level: LogLevel.LogLevel): pino.Level => {
  switch (level._tag) {
    case "All":
    case "Trace":
      return "trace"
    case "Debug":
      return "debug"
    case "Info":
      return "info"
    case "Warning":
      return "warn"
    case "Error":
      return "error"
    case "Fatal":
    case "None":
      return "fatal"
  }
}

const isFields = (part: unknown): part is Record<string, unknown> =>
  typeof part === "object" && part !== null && Object.getPrototypeOf(part) === Object.prototype

/**
 * An Effect logger that writes each line through pino, annotations as fields. A plain object
 * among the message's parts is fields of the line too (`Effect.logInfo("Sent", { "http.status": 200 })`):
 * for a line written on every request that is several times cheaper than `Effect.annotateLogs`,
 * which changes the fiber's annotations twice.
 */
export const makePinoLogger = (target: pino.Logger): Logger.Logger<unknown, void> =>
  Logger.make(({ annotations, cause, logLevel, message, spans }) => {
    const fields: Record<string, unknown> = {}
    for (const [key, value] of HashMap.toEntries(annotations)) fields[key] = value
    for (const span of List.toArray(spans)) fields[`span.${span.label}`] = span.startTime
    const texts: Array<string> = []
    for (const part of Array.isArray(message) ? message : [message]) {
      if (isFields(part)) Object.assign(fields, part)
      else texts.push(typeof part === "string" ? part : JSON.stringify(part))
    }
    let text = texts.join(" ")
    if (!Cause.isEmpty(cause)) {
      const pretty = Cause.pretty(cause, { renderErrorCause: true })
      fields["err"] = pretty
      // A failure logged on its own (as at start-up) still gets a readable message: its first line.
      if (text === "") text = pretty.split("\n")[0] ?? ""
    }
    target[pinoLevel(logLevel)](fields, text)
  })

export type LogFormat = "json" | "pretty"

export const LogConfig = Config.all({
  level: Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info)),
  format: Config.option(Config.literal("json", "pretty")("LOG_FORMAT"))
})

export const makePino = (options: { readonly format: LogFormat; readonly destination?: Writable }): pino.Logger => {
  const base: pino.LoggerOptions = {
    level: "trace",
    base: { service: "fleet" },
    redact: { paths: redactPaths, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime
  }
  if (options.format === "pretty") {
    // The service name is for machines reading JSON; on a terminal it would be a line under every line.
    return pino(base, pretty({ colorize: options.destination === undefined, sync: true, destination: options.destination ?? 1, ignore: "pid,hostname,service" }))
  }
  // Written asynchronously: a synchronous write per line was a tenth of a simple read's CPU. Lines
  // written while one write is under way go out together; pino flushes what is left when the
  // process exits (only a SIGKILL can lose the last lines). Should nobody read stdout, lines
  // beyond 16 MiB waiting are dropped rather than kept until memory runs out.
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: false, maxLength: 16 * 1024 * 1024 }))
}

/** Replaces Effect's default logger: JSON lines on stdout, or readable lines when stdout is a terminal (LOG_FORMAT overrides). */
export const LoggerLive: Layer.Layer<never, unknown> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* LogConfig
    const format: LogFormat = config.format._tag === "Some" ? config.format.value : process.stdout.isTTY ? "pretty" : "json"
    return layerWith(makePino({ format }), config.level)
  })
)

export const layerWith = (target: pino.Logger, level: LogLevel.LogLevel = LogLevel.Info): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, makePinoLogger(target)), Logger.minimumLogLevel(level))
