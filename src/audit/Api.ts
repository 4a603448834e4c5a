import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../auth/Middleware.js"
import { InvalidInput, strictInput } from "../common/Errors.js"
import { PageLimit, QueryCursor, QueryText, QueryTime } from "../common/QueryParams.js"
import { EventPage } from "./Domain.js"
import { RequiredScope } from "../auth/Scopes.js"

const Id = (what: string) => Schema.optional(Schema.UUID.annotations({ message: () => `expected ${what} id (a UUID)` }))

export const ListEventsParams = Schema.Struct({
  application: QueryText("an application name", 100),
  vm: Id("a VM"),
  request: Id("a VM request"),
  run: Id("a run"),
  actor: QueryText("an actor", 254),
  kind: QueryText("an event kind", 100),
  /** Events at or after this time. */
  since: QueryTime,
  /** Events before this time. */
  until: QueryTime,
  limit: Schema.optional(PageLimit(500)),
  cursor: QueryCursor
})

export class AuditApi extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("listEvents", "/v1/events").annotate(RequiredScope, "vms:read")
      .setUrlParams(strictInput(ListEventsParams))
      .addSuccess(EventPage)
      .addError(InvalidInput)
  )
  .middleware(Authentication)
{}
