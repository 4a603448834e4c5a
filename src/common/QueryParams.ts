import { Schema } from "effect"

/** What a page size must be: an integer from 1 to `max`. */
export const pageLimitExpected = (max: number) => `expected an integer from 1 to ${max}`

/** A page size in a query string (`?limit=`): an integer from 1 to `max`. */
export const PageLimit = (max: number) =>
  Schema.NumberFromString.pipe(
    Schema.int({ message: () => "expected an integer" }),
    Schema.between(1, max, { message: () => pageLimitExpected(max) })
  )
