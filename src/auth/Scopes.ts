import { Schema } from "effect"

/**
 * What a token may do. `admin` implies every other scope. `metrics:read` lets a scraper (and
 * nothing else) read `/metrics`.
 */
export const Scope = Schema.Literal("vms:read", "vms:write", "plans:read", "plans:write", "runs:write", "metrics:read", "admin")
export type Scope = typeof Scope.Type

export const allScopes: ReadonlyArray<Scope> = Scope.literals

/** True when a token holding `held` may act with `needed`. */
export const grants = (held: ReadonlyArray<Scope>, needed: Scope): boolean => held.includes("admin") || held.includes(needed)
