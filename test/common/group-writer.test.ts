import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import { makeGroupWriter } from "../../src/common/GroupWriter.js"

describe("group writer", () => {
  it.scoped("writes what gathers while a write is under way as one group, answering each caller with its own result", () =>
    Effect.gen(function* () {
      const groups: Array<ReadonlyArray<string>> = []
      const firstWriteMayEnd = yield* Deferred.make<void>()
      const write = yield* makeGroupWriter<string, string, never>({
        write: (group) =>
          Effect.gen(function* () {
            groups.push(group)
            if (groups.length === 1) yield* Deferred.await(firstWriteMayEnd)
            return group.map((item) => item.toUpperCase())
          })
      })
      const first = yield* Effect.fork(write("a"))
      // The first write is under way (it waits): these three gather meanwhile.
      yield* Effect.yieldNow()
      const rest = yield* Effect.fork(Effect.all(["b", "c", "d"].map(write), { concurrency: "unbounded" }))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(firstWriteMayEnd, undefined)
      expect(yield* first.await.pipe(Effect.flatten)).toBe("A")
      expect(yield* rest.await.pipe(Effect.flatten)).toEqual(["B", "C", "D"])
      expect(groups).toEqual([["a"], ["b", "c", "d"]])
    }))

  it.scoped("a write that throws fails its callers and the writer goes on", () =>
    Effect.gen(function* () {
      const write = yield* makeGroupWriter<string, string, never>({
        write: (group) => {
          if (group.includes("boom")) throw new Error("boom")
          return Effect.succeed(group)
        }
      })
      expect(Exit.isFailure(yield* Effect.exit(write("boom")))).toBe(true)
      expect(yield* write("fine")).toBe("fine")
    }))

  it.scoped("never puts two items with the same key in one group, and fails every caller of a failed write", () =>
    Effect.gen(function* () {
      const groups: Array<ReadonlyArray<string>> = []
      const write = yield* makeGroupWriter<string, number, string>({
        key: (item) => item.slice(0, 1),
        write: (group) => {
          groups.push(group)
          return group.includes("x1") ? Effect.fail("refused") : Effect.succeed(group.map((item) => item.length))
        }
      })
      const results = yield* Effect.all(["a1", "a22", "b1", "x1", "b333"].map((item) => Effect.exit(write(item))), { concurrency: "unbounded" })
      for (const group of groups) expect(new Set(group.map((item) => item[0])).size).toBe(group.length)
      expect(groups.flat().sort()).toEqual(["a1", "a22", "b1", "b333", "x1"])
      const byItem = new Map(["a1", "a22", "b1", "x1", "b333"].map((item, index) => [item, results[index]!]))
      expect(Exit.isFailure(byItem.get("x1")!)).toBe(true)
      // Whoever shared x1's group failed with it; the others got their own result.
      const withX = groups.find((group) => group.includes("x1"))!
      for (const [item, exit] of byItem) {
        if (withX.includes(item)) expect(exit).toEqual(Exit.fail("refused"))
        else expect(exit).toEqual(Exit.succeed(item.length))
      }
    }))
})
