/**
 * Seed 001's OrderService: the same retry-then-dead-letter pattern for two flows, with inverse validation.
 *
 * - `create-order` (seed: topic `order-events`): creates the order; an order id that another run created
 *   already is a "Duplicate order ID" error, retried after 1 s, 2 s and 4 s and then dead-lettered
 *   (~7 s), exactly the seed's timeline.
 * - `update-order-status` (seed: topic `order-status-updates`): updates the status of an existing order;
 *   an unknown order is "Order X not found", retried and dead-lettered the same way.
 *
 * Both steps live in one Worker (one process, one order store). The Orchestration is in docs/sdk.md.
 * Orders are kept in the ledger (EXAMPLE_LEDGER_DIR), applied once per run.
 *
 *   tsx services/examples/orders/order-service.ts
 */
import { defineWorker } from "../../sdk/index.ts";
import type { WorkerDefinition } from "../../sdk/index.ts";
import type { Ledger } from "../support/ledger.ts";
import { effectKey, ledgerFromEnv } from "../support/ledger.ts";
import { commandData, text } from "../support/input.ts";
import { runExample } from "../support/main.ts";

/** The seed's ValueError: worth retrying (the order may appear meanwhile), dead-lettered when it persists. */
export class OrderValidationError extends Error {
  override readonly name = "ValueError";
}

export interface StoredOrder {
  orderId: string;
  numItems: number;
  status: string;
  /** The run that created it. */
  runId: string;
}

export function orderService(ledger: Ledger = ledgerFromEnv("orders")): WorkerDefinition {
  /** The order as the ledger has it: created, then its latest status update. */
  const order = (orderId: string): StoredOrder | undefined => {
    let found: StoredOrder | undefined;
    for (const entry of ledger.entries()) {
      const value = entry.value as StoredOrder;
      if (value.orderId !== orderId) continue;
      if (entry.kind === "order.created") found = { ...value };
      if (entry.kind === "order.status-updated" && found) found.status = value.status;
    }
    return found;
  };
  return defineWorker({
    steps: {
      "create-order": {
        handle: (ctx) => {
          const { input } = commandData(ctx.data);
          const orderId = text(input, "orderId");
          const mine = ledger.get(effectKey(ctx));
          if (mine !== undefined) return mine.value;
          if (order(orderId) !== undefined) {
            throw new OrderValidationError(
              `Duplicate order ID: ${orderId} already exists. Cannot create duplicate order.`,
            );
          }
          const numItems = Number(input.numItems ?? 1);
          const { value } = ledger.applyOnce(effectKey(ctx), "order.created", (): StoredOrder => ({
            orderId,
            numItems,
            status: "created",
            runId: ctx.runId,
          }));
          ctx.log.info("order created", { orderId });
          return value;
        },
      },
      "update-order-status": {
        handle: (ctx) => {
          const { input } = commandData(ctx.data);
          const orderId = text(input, "orderId");
          const status = text(input, "status");
          if (order(orderId) === undefined) {
            throw new OrderValidationError(
              `Order ${orderId} not found. Cannot update status. Sending to DLQ.`,
            );
          }
          const { value } = ledger.applyOnce(effectKey(ctx), "order.status-updated", () => ({
            orderId,
            status,
            runId: ctx.runId,
          }));
          ctx.log.info("order status updated", { orderId, status });
          return value;
        },
      },
    },
  });
}

if (import.meta.main) await runExample(orderService());
