import { Effect } from "effect"
import { matchesAny } from "../common/Glob.js"
import { type Caller, CurrentActor } from "./Actor.js"
import { Forbidden } from "./Errors.js"
import { grants, type Scope } from "./Scopes.js"

/**
 * Authorization in handlers: one rule for every endpoint (see README.md).
 *
 * - `requireScope(scope)` first, in every handler of an authenticated endpoint.
 * - `authorizeApplication(app)` for every application the caller names in its input (a body
 *   field, a filter): 403 naming the application when the token is limited to others.
 * - `canSee(caller, app)` for resources the caller reaches by id: when it is false, answer as
 *   if the resource did not exist (404), so a limited token learns nothing about others.
 * - `applicationGlobs(caller)` for lists and counts: pass the globs down to the query, so a
 *   limited token only ever sees its applications.
 */

/** The 403 of a token without `scope`. */
export const lacksScope = (scope: Scope): Forbidden => new Forbidden({ message: `this token lacks the scope ${scope}`, scope })

/** The caller, if its token holds `scope` (or `admin`); otherwise 403 naming the scope. */
export const requireScope = (scope: Scope): Effect.Effect<Caller, Forbidden, CurrentActor> =>
  Effect.flatMap(CurrentActor, (caller) => grants(caller.scopes, scope) ? Effect.succeed(caller) : Effect.fail(lacksScope(scope)))

/** Whether the caller's token covers this application (true when it is not limited to some). */
export const canSee = (caller: Caller, application: string): boolean =>
  caller.applications === undefined || matchesAny(caller.applications)(application)

/** The caller, if its token covers `application`; otherwise 403 naming the application. */
export const authorizeApplication = (application: string): Effect.Effect<Caller, Forbidden, CurrentActor> =>
  Effect.flatMap(CurrentActor, (caller) =>
    canSee(caller, application)
      ? Effect.succeed(caller)
      : Effect.fail(new Forbidden({ message: `this token is not allowed the application ${application}`, application })))

/** The globs a list must be limited to, or `undefined` when the caller sees every application. */
export const applicationGlobs = (caller: Caller): ReadonlyArray<string> | undefined => caller.applications

/** A glob as a SQL `LIKE` pattern ('*' → '%', '?' → '_', the rest literal). */
export const likePattern = (glob: string): string =>
  glob.replace(/[\\%_]/g, "\\$&").replace(/\*/g, "%").replace(/\?/g, "_")
