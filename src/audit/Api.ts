import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../auth/Middleware.js"
import { InvalidInput, strictInput } from "../common/Errors.js"
import { EventPage } from "./Domain.js"

const Text = (what: string, max: number) =>
  Schema.optional(
    Schema.String.pipe(
      Schema.maxLength(max, { message: () => `expected ${what} of at most ${max} characters` }),
      Schema.pattern(/^[^\p{Cc}]*$/u, { message: () => "expected printable text without control characters" })
    )
  )

const Id = (what: string) => Schema.optional(Schema.UUID.annotations({ message: () => `expected ${what} id (a UUID)` }))

const Time = Schema.optional(
  Schema.Date.annotations({ message: () => "expected a date-time such as 2025-05-31T12:00:00Z", jsonSchema: { type: "string", format: "date-time" } })
)

export const ListEventsParams = Schema.Struct({
  application: Text("an application name", 100),
  vm: Id("a VM"),
  request: Id("a VM request"),
  run: Id("a run"),
  actor: Text("an actor", 254),
  kind: Text("an event kind", 100),
  /** Events at or after this time. */
  since: Time,
  /** Events before this time. */
  until: Time,
  limit: Schema.optional(
    Schema.NumberFromString.pipe(
      Schema.int({ message: () => "expected an integer" }),
      Schema.between(1, 500, { message: () => "expected an integer from 1 to 500" })
    )
  ),
  cursor: Schema.optional(Schema.String.pipe(Schema.maxLength(200)))
})

export class AuditApi extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("listEvents", "/v1/events")
      .setUrlParams(strictInput(ListEventsParams))
      .addSuccess(EventPage)
      .addError(InvalidInput)
  )
  .middleware(Authentication)
{}
