import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { NameTaken } from "../../src/vms/Repo.js"
import { retryWhenNameTaken } from "../../src/vms/Writes.js"

/** A write that fails with each of `failures` in turn, then succeeds; and how often it ran. */
const flaky = (failures: ReadonlyArray<NameTaken | "other">) => {
  let runs = 0
  const write = Effect.suspend(() => {
    const failure = failures[runs++]
    return failure === undefined ? Effect.succeed("written") : Effect.fail(failure)
  })
  return { write, runs: () => runs }
}

describe("a write whose names were taken meanwhile", () => {
  it.effect("is run again, with its names drawn again, up to three more times", () =>
    Effect.gen(function* () {
      const twice = flaky([new NameTaken(), new NameTaken()])
      expect(yield* retryWhenNameTaken(twice.write)).toBe("written")
      expect(twice.runs()).toBe(3)

      const always = flaky(Array.from({ length: 10 }, () => new NameTaken()))
      const exit = yield* Effect.exit(retryWhenNameTaken(always.write))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(always.runs()).toBe(4)
    }))

  it.effect("is not run again for any other failure", () =>
    Effect.gen(function* () {
      const other = flaky(["other"])
      expect(yield* Effect.exit(retryWhenNameTaken(other.write))).toEqual(Exit.fail("other"))
      expect(other.runs()).toBe(1)
    }))
})
