import { Effect, Schema } from "effect"
import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import { sep } from "node:path"

/**
 * The embedded database (PGlite) is single-process: two processes opening the same data folder
 * corrupt it, and PGlite does not lock it. Before opening it, fleet looks (on Linux, through
 * /proc) for another process holding files open in it — a `fleet serve`, a CLI command — and
 * stops with an explanation instead.
 */

export class EmbeddedDatabaseBusy extends Schema.TaggedError<EmbeddedDatabaseBusy>()("EmbeddedDatabaseBusy", {
  message: Schema.String
}) {}

/** Other processes with a file open under `directory` (Linux only; elsewhere, an empty list). */
export const processesUsing = (directory: string): ReadonlyArray<{ readonly pid: number; readonly command: string }> => {
  const prefix = directory.endsWith(sep) ? directory : `${directory}${sep}`
  let pids: Array<string>
  try {
    pids = readdirSync("/proc").filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
  } catch {
    return []
  }
  const found: Array<{ pid: number; command: string }> = []
  for (const pid of pids) {
    let descriptors: Array<string>
    try {
      descriptors = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue // gone, or not ours to look at
    }
    const holds = descriptors.some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(prefix)
      } catch {
        return false
      }
    })
    if (holds) {
      let command = ""
      try {
        command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((part) => part !== "").join(" ")
      } catch {
        // keep it empty
      }
      found.push({ pid: Number(pid), command })
    }
  }
  return found
}

/** Fails when another process has the embedded database in `directory` open. */
export const ensureEmbeddedDatabaseFree = (directory: string): Effect.Effect<void, EmbeddedDatabaseBusy> =>
  Effect.suspend(() => {
    const holders = processesUsing(directory)
    if (holders.length === 0) return Effect.void
    // A long command line (node with its loader's options) is cut at its start: its end says what runs (`… src/bin.ts serve`).
    const shown = (command: string) => (command.length > 120 ? `…${command.slice(-119)}` : command)
    const who = holders.map((holder) => `pid ${holder.pid}${holder.command === "" ? "" : ` (${shown(holder.command)})`}`).join(", ")
    return Effect.fail(new EmbeddedDatabaseBusy({
      message:
        `the embedded database in ${directory} is open in another process: ${who}. It can only be used by one process at a time. ` +
        "Stop that process (a `fleet serve`, most likely), run this, then start it again (what is in the database stays); " +
        "or put both on PostgreSQL with DATABASE_URL; or give this process its own FLEET_DATA_DIR."
    }))
  })
