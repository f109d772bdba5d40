/**
 * Seed 002's InventoryService (Worker `inventory-service`): `reserve-inventory` reserves stock for the
 * order and its compensation releases it; `release-inventory` is the same release as a step of the
 * choreographed variant. Stock starts from `EXAMPLE_STOCK` (JSON `{"<productId>": <units>}`, default
 * 100 of everything) and is derived from the ledger, so a restart does not forget reservations.
 * Not enough stock is not worth retrying: the step fails at once and the engine compensates.
 *
 *   tsx services/examples/order-saga/inventory-service.ts
 */
import { defineWorker, NonRetryableError } from "../../sdk/index.ts";
import type { StepContext, WorkerDefinition } from "../../sdk/index.ts";
import type { Ledger } from "../support/ledger.ts";
import { effectKey, ledgerFromEnv } from "../support/ledger.ts";
import { commandData, text } from "../support/input.ts";
import { runExample } from "../support/main.ts";

export interface Reservation {
  reservationId: string;
  productId: string;
  quantity: number;
}

const DEFAULT_STOCK = 100;

export function inventoryService(
  ledger: Ledger = ledgerFromEnv("inventory-service"),
  initialStock: Record<string, number> = JSON.parse(process.env.EXAMPLE_STOCK ?? "{}") as Record<
    string,
    number
  >,
): WorkerDefinition {
  /** Units of `productId` left: the initial stock minus reservations not released. */
  const available = (productId: string): number => {
    let units = initialStock[productId] ?? DEFAULT_STOCK;
    for (const entry of ledger.entries()) {
      const r = entry.value as Reservation;
      if (r.productId !== productId) continue;
      if (entry.kind === "stock.reserved") units -= r.quantity;
      if (entry.kind === "stock.released") units += r.quantity;
    }
    return units;
  };
  const release = (ctx: StepContext) => {
    const reserved = ledger.get(effectKey({ ...ctx, step: "reserve-inventory", action: "do" }));
    if (reserved === undefined) return { released: false, reason: "nothing was reserved for this run" };
    const { value } = ledger.applyOnce(
      effectKey({ ...ctx, step: "reserve-inventory", action: "compensate" }),
      "stock.released",
      () => reserved.value as Reservation,
    );
    ctx.log.info("stock released", { ...value });
    return { released: true, ...value };
  };
  return defineWorker({
    steps: {
      "reserve-inventory": {
        handle: (ctx) => {
          const { input } = commandData(ctx.data);
          const productId = text(input, "productId");
          const quantity = Number(input.quantity ?? 1);
          const { value } = ledger.applyOnce(effectKey(ctx), "stock.reserved", () => {
            const left = available(productId);
            if (left < quantity) {
              throw new NonRetryableError(`only ${left} unit(s) of ${productId} left, ${quantity} asked`, {
                name: "OutOfStock",
              });
            }
            return { reservationId: `res-${ctx.runId}`, productId, quantity } satisfies Reservation;
          });
          ctx.log.info("stock reserved", { ...value });
          return value;
        },
        compensate: release,
      },
      "release-inventory": { handle: release },
    },
  });
}

if (import.meta.main) await runExample(inventoryService());
