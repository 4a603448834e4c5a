/**
 * A pass-through HTTP proxy between a controller and the proctor simulator that lets a test
 * choose the exact moment a controller dies: after proctor has ACCEPTED a submission (the
 * execution exists and will create the VM) but before the controller hears the answer. That is
 * the most dangerous moment for duplicates, and a kill elsewhere cannot hit it reliably.
 *
 * It can also hold submissions back for a moment (so that a test can finish posting its VM
 * requests to a controller before any submission goes out).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Deferred, Effect, Exit, type Scope } from "effect"

export interface Trip {
  /** The VM_NAME of the submission whose answer was withheld. */
  readonly vmName: string
  /** Proctor's id for that execution (the controller never learned it). */
  readonly proctorId: string
}

export interface KillSwitchProxy {
  readonly url: string
  /** Submissions wait (unanswered, not yet forwarded) until `release`. */
  readonly hold: Effect.Effect<void>
  readonly release: Effect.Effect<void>
  /**
   * On the `nth` submission proctor accepts from now on: runs `action` (kill the controller)
   * synchronously once proctor has answered, and drops the connection instead of answering.
   * The returned effect completes with what was tripped on.
   */
  readonly armAfter: (nth: number, action: () => void) => Effect.Effect<Effect.Effect<Trip>>
  /** Accepted submissions forwarded so far. */
  readonly accepted: () => number
}

const forwardedRequestHeaders = ["content-type", "email-id", "access-token", "client-version"]

const readBody = (request: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks)))
    request.on("error", reject)
  })

export const startKillSwitchProxy = (upstream: string): Effect.Effect<KillSwitchProxy, never, Scope.Scope> =>
  Effect.gen(function* () {
    let held: Array<() => void> | undefined
    let accepted = 0
    let trap: { remaining: number; action: () => void; tripped: Deferred.Deferred<Trip> } | undefined

    const handle = async (request: IncomingMessage, response: ServerResponse) => {
      const body = await readBody(request)
      const isSubmit = request.method === "POST" && (request.url ?? "").split("?")[0] === "/execution"
      if (isSubmit && held !== undefined) {
        const queue = held
        await new Promise<void>((resolve) => queue.push(resolve))
      }
      const headers: Record<string, string> = {}
      for (const name of forwardedRequestHeaders) {
        const value = request.headers[name]
        if (typeof value === "string") headers[name] = value
      }
      const answer = await fetch(`${upstream}${request.url ?? "/"}`, {
        method: request.method ?? "GET",
        headers,
        ...(body.length > 0 ? { body } : {})
      })
      const text = await answer.text()
      if (isSubmit && answer.status === 201) {
        accepted++
        if (trap !== undefined && --trap.remaining === 0) {
          const { action, tripped } = trap
          trap = undefined
          action()
          const args = (JSON.parse(body.toString("utf8")) as { args?: Record<string, string> }).args ?? {}
          // Proctor's id is a 64-bit integer: read it from the text, never through a float.
          const proctorId = /"id"\s*:\s*(\d+)/.exec(text)?.[1] ?? "?"
          Deferred.unsafeDone(tripped, Exit.succeed({ vmName: args["VM_NAME"] ?? "?", proctorId }))
          response.socket?.destroy()
          return
        }
      }
      const contentType = answer.headers.get("content-type")
      response.writeHead(answer.status, contentType === null ? {} : { "content-type": contentType })
      response.end(text)
    }

    const server = yield* Effect.acquireRelease(
      Effect.async<ReturnType<typeof createServer>>((resume) => {
        const server = createServer((request, response) => {
          handle(request, response).catch(() => {
            if (!response.headersSent) response.writeHead(502).end()
            else response.socket?.destroy()
          })
        })
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const { port } = server.address() as AddressInfo

    return {
      url: `http://127.0.0.1:${port}`,
      hold: Effect.sync(() => {
        held ??= []
      }),
      release: Effect.sync(() => {
        const queue = held ?? []
        held = undefined
        for (const resolve of queue) resolve()
      }),
      armAfter: (nth, action) =>
        Effect.map(Deferred.make<Trip>(), (tripped) => {
          trap = { remaining: nth, action, tripped }
          return Deferred.await(tripped)
        }),
      accepted: () => accepted
    } satisfies KillSwitchProxy
  })
