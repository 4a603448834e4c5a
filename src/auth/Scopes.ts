import { Context, Schema } from "effect"

/**
 * What a token may do. `admin` implies every other scope. `metrics:read` lets a scraper (and
 * nothing else) read `/metrics`.
 */
export const Scope = Schema.Literal("vms:read", "vms:write", "plans:read", "plans:write", "runs:write", "metrics:read", "admin")
export type Scope = typeof Scope.Type

export const allScopes: ReadonlyArray<Scope> = Scope.literals

/** True when a token holding `held` may act with `needed`. */
export const grants = (held: ReadonlyArray<Scope>, needed: Scope): boolean => held.includes("admin") || held.includes(needed)

/**
 * The scope an endpoint needs, as an annotation of its definition (`.annotate(RequiredScope,
 * "vms:write")`): the `Authentication` middleware refuses a token without it (403) before the
 * request is read, so that such a token learns nothing of the input. A handler that needs more
 * in some cases (saving a plan needs plans:write, a dry run plans:read) checks that itself.
 */
export class RequiredScope extends Context.Tag("fleet/RequiredScope")<RequiredScope, Scope>() {}
