import { Context, Effect, Layer } from "effect"
import { makeSignal, type Signal } from "../common/Signal.js"

/** Wakes the reconciler: executions were written that are due now. */
export class Wakeup extends Effect.Service<Wakeup>()("fleet/Wakeup", { effect: makeSignal }) {}

/**
 * Kicked by the reconciler whenever a VM settles (ready, failed, timed out, decommissioned), for
 * whoever waits on VMs (the executor). Optional: without it nobody is told.
 */
export class VmSettled extends Context.Tag("fleet/VmSettled")<VmSettled, Signal>() {
  static readonly layer = Layer.effect(VmSettled, makeSignal)
}
