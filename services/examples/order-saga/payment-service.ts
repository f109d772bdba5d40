/**
 * Seed 002's PaymentService (Worker `payment-service`): `process-payment` charges the order's amount,
 * and declines amounts above `PAYMENT_LIMIT` (default 1000). A decline is final (NonRetryableError): the
 * worker publishes `io.eventloom.step.failed` at once and the engine compensates the saga
 * (release-inventory, then cancel-order). Charges are applied once per run.
 *
 *   PAYMENT_LIMIT=500 tsx services/examples/order-saga/payment-service.ts
 */
import { defineWorker, NonRetryableError } from "../../sdk/index.ts";
import type { WorkerDefinition } from "../../sdk/index.ts";
import type { Ledger } from "../support/ledger.ts";
import { effectKey, ledgerFromEnv } from "../support/ledger.ts";
import { amount, commandData, text } from "../support/input.ts";
import { runExample } from "../support/main.ts";

export const DEFAULT_PAYMENT_LIMIT = 1000;

export interface Payment {
  paymentId: string;
  orderId: string;
  amount: number;
}

export function paymentService(
  ledger: Ledger = ledgerFromEnv("payment-service"),
  limit: number = Number(process.env.PAYMENT_LIMIT ?? DEFAULT_PAYMENT_LIMIT),
): WorkerDefinition {
  if (!Number.isFinite(limit) || limit < 0)
    throw new Error(`PAYMENT_LIMIT must be a non-negative number, got ${process.env.PAYMENT_LIMIT}`);
  return defineWorker({
    steps: {
      "process-payment": {
        handle: (ctx) => {
          const { input } = commandData(ctx.data);
          const orderId = text(input, "orderId");
          const charge = amount(input, "amount");
          if (charge > limit) {
            throw new NonRetryableError(
              `payment of ${charge} for order ${orderId} exceeds the limit of ${limit}`,
              { name: "PaymentDeclined" },
            );
          }
          const { value, applied } = ledger.applyOnce(effectKey(ctx), "payment.charged", (): Payment => ({
            paymentId: `pay-${ctx.runId}`,
            orderId,
            amount: charge,
          }));
          ctx.log.info(applied ? "payment charged" : "payment already charged for this run", { ...value });
          return value;
        },
      },
    },
  });
}

if (import.meta.main) await runExample(paymentService());
