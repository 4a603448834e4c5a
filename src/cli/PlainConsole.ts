import { Console } from "effect"

// eslint-disable-next-line no-control-regex
const ansiSequence = /\x1b\[[0-9;]*m/g

const plain = (args: ReadonlyArray<unknown>): Array<unknown> =>
  args.map((arg) => (typeof arg === "string" ? arg.replace(ansiSequence, "") : arg))

/** Whether text written to `stream` should carry colours: a terminal, and NO_COLOR not set (https://no-color.org). */
export const wantsColour = (stream: { readonly isTTY?: boolean }, env: Record<string, string | undefined> = process.env): boolean =>
  stream.isTTY === true && (env["NO_COLOR"] ?? "") === ""

/**
 * `base` with the colours taken out of what goes to stdout (log, info) and to stderr (error, warn)
 * where they are not wanted: `fleet --help | less`, or an error message written to a log file,
 * then reads as text. (@effect/cli renders its help and its errors with ANSI colours always.)
 */
export const colourWhereWanted = (
  base: Console.Console,
  colour: { readonly stdout: boolean; readonly stderr: boolean } = { stdout: wantsColour(process.stdout), stderr: wantsColour(process.stderr) }
): Console.Console => {
  if (colour.stdout && colour.stderr) return base
  const out = (args: ReadonlyArray<unknown>) => (colour.stdout ? args : plain(args))
  const err = (args: ReadonlyArray<unknown>) => (colour.stderr ? args : plain(args))
  return {
    ...base,
    log: (...args) => base.log(...out(args)),
    info: (...args) => base.info(...out(args)),
    error: (...args) => base.error(...err(args)),
    warn: (...args) => base.warn(...err(args)),
    unsafe: {
      ...base.unsafe,
      log: (...args) => base.unsafe.log(...out(args)),
      info: (...args) => base.unsafe.info(...out(args)),
      error: (...args) => base.unsafe.error(...err(args)),
      warn: (...args) => base.unsafe.warn(...err(args))
    }
  }
}
