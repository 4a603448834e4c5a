import { createHash } from "node:crypto"
import pg from "pg"

/**
 * Statement texts given a name, at most this many per process. Texts come from the code (values
 * are always parameters), so they are few; past the limit a text is sent unnamed, as before.
 */
const maxNamedTexts = 1_000

/**
 * Texts with more parameters than this are sent unnamed: their number of parameters follows the
 * data (an `in (...)` list, a multi-row insert), so each length would be one more statement kept
 * by every connection. The hot statements pass their rows as one JSON parameter.
 */
const maxParameters = 32

/** Errors after which a connection's prepared statements are not to be used again (see below). */
const isStalePreparedStatement = (error: unknown): boolean => {
  const { code, routine } = (error ?? {}) as { readonly code?: unknown; readonly routine?: unknown }
  // 0A000 from RevalidateCachedQuery, "cached plan must not change result type": a `select *`
  // prepared before a migration changed its table. 26000: the statement is gone (a pooler or
  // DISCARD dropped it). 42P05: the session has the name already (it outlived a connection).
  return (code === "0A000" && routine === "RevalidateCachedQuery") || code === "26000" || code === "42P05"
}

type Callback = (error: Error | null, result: unknown) => void

/**
 * A `pg` client class that prepares each parameterised statement once per connection — a named
 * statement, named after its text — instead of having PostgreSQL parse and plan it on every call.
 * The reconciler's and the executor's statements are large CTEs run thousands of times a minute:
 * parsing and planning them was over a quarter of PostgreSQL's CPU under `bench:recycle`.
 *
 * Statements without parameters (migrations, several statements in one text) are sent as they
 * are, and so are those with many. When PostgreSQL refuses a prepared statement (a migration
 * changed the table under a `select *`, the statement is gone, or its name is taken), that call
 * fails — inside a transaction, the transaction with it — and the connection prepares its
 * statements afresh, under new names, from the next call on. After five runs PostgreSQL may plan
 * a prepared statement once for all values; fleet's statements look rows up by key or by a
 * jsonb parameter, where that plan is the one it would choose anyway.
 */
export const preparingClient = (): typeof pg.Client => {
  const names = new Map<string, string>()
  const generations = new WeakMap<pg.Client, number>()
  const nameOf = (text: string): string | undefined => {
    let name = names.get(text)
    if (name === undefined && names.size < maxNamedTexts) {
      name = `fleet_${createHash("sha1").update(text).digest("hex").slice(0, 24)}`
      names.set(text, name)
    }
    return name
  }
  const query = pg.Client.prototype.query as (this: pg.Client, ...args: Array<unknown>) => unknown

  class PreparingClient extends pg.Client {}
  Object.defineProperty(PreparingClient.prototype, "query", {
    value: function (this: pg.Client, config: unknown, values?: unknown, callback?: unknown): unknown {
      if (
        typeof config !== "string" || !Array.isArray(values) || values.length === 0 || values.length > maxParameters ||
        typeof callback !== "function"
      ) {
        return query.call(this, config, values, callback)
      }
      const name = nameOf(config)
      if (name === undefined) return query.call(this, config, values, callback)
      const generation = generations.get(this) ?? 0
      const done: Callback = (error, result) => {
        if (error !== null && isStalePreparedStatement(error)) generations.set(this, generation + 1)
        ;(callback as Callback)(error, result)
      }
      return query.call(this, { name: generation === 0 ? name : `${name}_${generation}`, text: config, values }, done)
    }
  })
  return PreparingClient
}
