import { Effect } from "effect"
import * as YAML from "yaml"
import { InvalidInput, Issue } from "./Errors.js"

/**
 * Parses YAML text. Syntax errors are reported with their line and column, all of them,
 * under the given source name (a file path, or "body").
 */
export const parseYaml = (text: string, source: string): Effect.Effect<unknown, InvalidInput> =>
  Effect.suspend(() => {
    const document = YAML.parseDocument(text, { uniqueKeys: true })
    if (document.errors.length > 0) {
      return Effect.fail(
        InvalidInput.fromIssues(
          document.errors.map((error) => {
            const position = error.linePos?.[0]
            const where = position === undefined ? source : `${source}:${position.line}:${position.col}`
            const text = (error.message.split("\n")[0] ?? error.message).replace(/ at line \d+, column \d+:?$/, "")
            return Issue.at([], `${where}: ${text}`)
          })
        )
      )
    }
    // What parses can still fail to become a value: an alias to no anchor, too many aliases.
    return Effect.try({
      try: () => document.toJS({ maxAliasCount: 100 }) as unknown,
      catch: (error) => InvalidInput.one([], `${source}: ${error instanceof Error ? error.message : String(error)}`)
    })
  })
