import { HttpApiBuilder } from "@effect/platform"
import { Effect, Option } from "effect"
import { applicationGlobs, authorizeApplication, requireScope } from "../auth/Authorization.js"
import { grants } from "../auth/Scopes.js"
import { InvalidInput } from "../common/Errors.js"
import { FleetApi } from "../http/Api.js"
import { EventPage } from "./Domain.js"
import { AuditRepo } from "./Repo.js"

/** Cursors are the last id of a page, opaque to clients. */
export const encodeEventCursor = (id: string): string => Buffer.from(`e:${id}`, "utf8").toString("base64url")
const decodeEventCursor = (cursor: string): Option.Option<bigint> => {
  const text = Buffer.from(cursor, "base64url").toString("utf8")
  return /^e:[1-9][0-9]{0,18}$/.test(text) ? Option.some(BigInt(text.slice(2))) : Option.none()
}

/**
 * `GET /v1/events` needs `vms:read`. A token limited to applications sees only their events;
 * token administration (`token.*`) and the records of requests (`http.request`, which name the
 * token and may be of any endpoint) are shown to `admin` tokens only.
 */
export const AuditHttp = HttpApiBuilder.group(FleetApi, "audit", (handlers) =>
  Effect.gen(function* () {
    const repo = yield* AuditRepo
    return handlers.handle("listEvents", ({ urlParams }) =>
      Effect.gen(function* () {
        const caller = yield* requireScope("vms:read")
        if (urlParams.application !== undefined) yield* authorizeApplication(urlParams.application)
        const { cursor, limit = 50, ...filter } = urlParams
        const before = cursor === undefined ? Option.none<bigint>() : decodeEventCursor(cursor)
        if (cursor !== undefined && Option.isNone(before)) {
          return yield* Effect.fail(InvalidInput.one("cursor", "expected a cursor returned by a previous page"))
        }
        // A range that ends before it starts is a mistake, not a question whose answer is "nothing".
        if (filter.since !== undefined && filter.until !== undefined && filter.until < filter.since) {
          return yield* Effect.fail(InvalidInput.one("until", `expected a time at or after since (${filter.since.toISOString()})`))
        }
        const rows = yield* repo.list(
          { ...filter, applicationGlobs: applicationGlobs(caller), withoutAdminEvents: !grants(caller.scopes, "admin") },
          before,
          limit + 1
        )
        const items = rows.slice(0, limit)
        return new EventPage({
          items,
          nextCursor: rows.length > limit ? encodeEventCursor(items[items.length - 1]!.id) : null
        })
      }))
  }))
