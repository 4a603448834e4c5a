/** The schemas of the query strings of the API's lists: page sizes, text filters, cursors, times. */
import { Schema } from "effect"

/** What a page size must be: an integer from 1 to `max`. */
export const pageLimitExpected = (max: number) => `expected an integer from 1 to ${max}`

/**
 * A page size in a query string (`?limit=`): an integer from 1 to `max`, written in decimal digits
 * (`1e2` and `0x10` are numbers to JavaScript, not to a person reading the URL; digits are whole).
 */
export const PageLimit = (max: number) =>
  Schema.compose(
    Schema.String.pipe(Schema.pattern(/^[0-9]{1,9}$/, { message: () => pageLimitExpected(max) })),
    Schema.NumberFromString
  ).pipe(Schema.between(1, max, { message: () => pageLimitExpected(max) }))

/**
 * A text filter in a query string (`?application=payments-api`): `what` (with its article) of at
 * most `max` characters, not empty (an empty filter would match nothing, silently), without
 * control characters (PostgreSQL text cannot hold NUL: refused here rather than in the query).
 */
export const QueryText = (what: string, max: number) =>
  Schema.optional(
    Schema.String.pipe(
      Schema.minLength(1, { message: () => `expected ${what}, not an empty string` }),
      Schema.maxLength(max, { message: () => `expected ${what} of at most ${max} characters` }),
      Schema.pattern(/^[^\p{Cc}]*$/u, { message: () => `expected ${what} without control characters` })
    )
  )

/** The cursor a page ended with, given back for the next page (its content is checked by the endpoint). */
export const QueryCursor = Schema.optional(
  Schema.String.pipe(Schema.maxLength(200, { message: () => "expected a cursor returned by a previous page" }))
)

const timeExpected = "expected a date-time such as 2025-05-31T12:00:00Z (or a day, 2025-05-31)"

/**
 * A time as a person writes one: an ISO 8601 day (midnight UTC), or a date-time with its offset
 * (`Z`, `+02:00`). A time without one would be read in the machine's zone, `1` would be the year
 * 2001, and 2025-02-30 would be 2 March: each is refused.
 */
export const IsoTime = Schema.compose(
  Schema.String.pipe(
    Schema.pattern(/^\d{4}-\d{2}-\d{2}(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/, { message: () => timeExpected }),
    Schema.filter((text) => {
      const [year, month, day] = text.slice(0, 10).split("-").map(Number) as [number, number, number]
      const date = new Date(Date.UTC(year, month - 1, day))
      return (date.getUTCMonth() === month - 1 && date.getUTCDate() === day) || `expected a day the calendar has, not ${text.slice(0, 10)}`
    })
  ),
  Schema.Date.annotations({ message: () => timeExpected })
).annotations({ jsonSchema: { type: "string", format: "date-time" } })

/** A time in a query string (`?since=`). */
export const QueryTime = Schema.optional(IsoTime)

/** A cursor that is a position in a list, as a previous page gave it (-1: before the first). */
export const QueryIndexCursor = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^(-1|[0-9]{1,9})$/, { message: () => "expected a cursor returned by a previous page" })),
  Schema.NumberFromString
)
