import { Console, Effect } from "effect"

/** Left-aligned columns separated by two spaces, header first; for terminals. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

/**
 * Exit status 1 without an error of its own: the command printed its result, but the result is a
 * failure (a run that did not succeed, VMs that did not become ready), which scripts must see.
 */
export const exitWithFailureStatus = Effect.sync(() => {
  process.exitCode = 1
})
