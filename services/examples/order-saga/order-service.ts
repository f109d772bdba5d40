/**
 * Seed 002's OrderService as an Eventloom worker (examples/order-saga/workers.yaml, Worker `order-service`):
 * step `create-order` creates the order ("pending" until the saga finishes) and its compensation cancels
 * it; step `cancel-order` does the same cancel for the choreographed variant, where cancelling is a step
 * of its own. Effects are applied once per run.
 *
 *   tsx services/examples/order-saga/order-service.ts     (under the operator's environment)
 */
import { defineWorker } from "../../sdk/index.ts";
import type { StepContext, WorkerDefinition } from "../../sdk/index.ts";
import type { Ledger } from "../support/ledger.ts";
import { effectKey, ledgerFromEnv } from "../support/ledger.ts";
import { commandData, text } from "../support/input.ts";
import { runExample } from "../support/main.ts";

export interface Order {
  orderId: string;
  productId: string;
  quantity: number;
  status: "pending" | "cancelled";
}

/** The order id of a command: `input.orderId` (orchestrated) or `orderId` at the top (an event's data). */
function orderIdOf(data: unknown): string {
  const top = (data as { orderId?: unknown } | null)?.orderId;
  return typeof top === "string" && top !== "" ? top : text(commandData(data).input, "orderId");
}

export function orderService(ledger: Ledger = ledgerFromEnv("order-service")): WorkerDefinition {
  const cancel = (ctx: StepContext) => {
    const orderId = orderIdOf(ctx.data);
    const { value, applied } = ledger.applyOnce(effectKey(ctx), "order.cancelled", () => ({
      orderId,
      status: "cancelled" as const,
    }));
    ctx.log.info(applied ? "order cancelled" : "order already cancelled", { orderId });
    return value;
  };
  return defineWorker({
    steps: {
      "create-order": {
        handle: (ctx) => {
          const { input } = commandData(ctx.data);
          const order: Order = {
            orderId: text(input, "orderId"),
            productId: text(input, "productId"),
            quantity: Number(input.quantity ?? 1),
            status: "pending",
          };
          const { value, applied } = ledger.applyOnce(effectKey(ctx), "order.created", () => order);
          ctx.log.info(applied ? "order created" : "order already created by this run", {
            orderId: order.orderId,
          });
          return value;
        },
        compensate: cancel,
      },
      "cancel-order": { handle: cancel },
    },
  });
}

if (import.meta.main) await runExample(orderService());
