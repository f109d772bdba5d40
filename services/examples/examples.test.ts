import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CloudEvent } from "../events/cloudevent.ts";
import { handlersFor, isNonRetryable, silentLogger } from "../sdk/index.ts";
import type { StepContext, WorkerDefinition } from "../sdk/index.ts";
import { orderService as sagaOrderService } from "./order-saga/order-service.ts";
import { inventoryService } from "./order-saga/inventory-service.ts";
import { paymentService } from "./order-saga/payment-service.ts";
import { orderService as seed001OrderService } from "./orders/order-service.ts";
import { Ledger } from "./support/ledger.ts";
import { createClientWorker } from "./tenant-creation/create-client.ts";
import { createRealmWorker } from "./tenant-creation/create-realm.ts";

/** Runs a step of a worker definition the way the SDK would, without Kafka. */
async function run(
  worker: WorkerDefinition,
  step: string,
  data: unknown,
  opts: { runId?: string; action?: "do" | "compensate" } = {},
) {
  const handlers = handlersFor(worker, step);
  if (!handlers) throw new Error(`no handler for ${step}`);
  const ctx: StepContext = {
    event: {} as CloudEvent,
    data,
    runId: opts.runId ?? "run-1",
    step,
    attempt: 1,
    retryCount: 0,
    action: opts.action ?? "do",
    signal: new AbortController().signal,
    log: silentLogger,
  };
  const fn = ctx.action === "do" ? handlers.handle : handlers.compensate;
  if (!fn) throw new Error(`no ${ctx.action} for ${step}`);
  return fn.call(handlers, ctx);
}

const order = { input: { orderId: "ORD-1", productId: "P-1", quantity: 2, amount: 120 } };

describe("seed 002's order saga workers", () => {
  it("create an order, reserve stock and charge once per run, even when a command is delivered again", async () => {
    const ledger = new Ledger();
    const workers = [
      sagaOrderService(ledger),
      inventoryService(ledger, { "P-1": 5 }),
      paymentService(ledger, 1000),
    ];
    for (let delivery = 0; delivery < 2; delivery++) {
      await run(workers[0] as WorkerDefinition, "create-order", order);
      await run(workers[1] as WorkerDefinition, "reserve-inventory", order);
      expect(await run(workers[2] as WorkerDefinition, "process-payment", order)).toEqual({
        paymentId: "pay-run-1",
        orderId: "ORD-1",
        amount: 120,
      });
    }
    expect([
      ledger.count("order.created"),
      ledger.count("stock.reserved"),
      ledger.count("payment.charged"),
    ]).toEqual([1, 1, 1]);
  });

  it("declines a payment above the limit for good, and the compensations release stock and cancel the order once", async () => {
    const ledger = new Ledger();
    const inventory = inventoryService(ledger, { "P-1": 5 });
    const orders = sagaOrderService(ledger);
    const big = { input: { ...order.input, amount: 5000 } };
    await run(orders, "create-order", big);
    await run(inventory, "reserve-inventory", big);
    const declined = await Promise.resolve(run(paymentService(ledger, 1000), "process-payment", big)).catch(
      (e: unknown) => e,
    );
    expect(isNonRetryable(declined)).toBe(true);
    expect((declined as Error).name).toBe("PaymentDeclined");
    for (let delivery = 0; delivery < 2; delivery++) {
      await run(inventory, "reserve-inventory", big, { action: "compensate" });
      await run(inventory, "release-inventory", big);
      await run(orders, "create-order", big, { action: "compensate" });
    }
    expect([
      ledger.count("payment.charged"),
      ledger.count("stock.released"),
      ledger.count("order.cancelled"),
    ]).toEqual([0, 1, 1]);
    // The released units are available again.
    await run(inventory, "reserve-inventory", { input: { ...order.input, quantity: 5 } }, { runId: "run-2" });
  });

  it("refuses to reserve more stock than is left, without retries", async () => {
    const inventory = inventoryService(new Ledger(), { "P-1": 1 });
    const err = await Promise.resolve(run(inventory, "reserve-inventory", order)).catch((e: unknown) => e);
    expect((err as Error).name).toBe("OutOfStock");
    expect(isNonRetryable(err)).toBe(true);
  });
});

describe("seed 003's tenant creation workers", () => {
  it("create the realm, then the client in it, and delete both on compensation", async () => {
    const ledger = new Ledger();
    const input = { tenantId: "acme", realmName: "acme-realm" };
    const realm = await run(createRealmWorker(ledger), "create-realm", { input });
    expect(realm).toEqual({ realmId: "realm-acme-acme-realm", realmName: "acme-realm", tenantId: "acme" });
    const client = await run(createClientWorker(ledger), "create-client", {
      input,
      steps: { "create-realm": realm },
    });
    expect(client).toEqual({ clientId: "client-acme", realmId: "realm-acme-acme-realm" });
    await run(
      createClientWorker(ledger),
      "create-client",
      { input, steps: { "create-realm": realm } },
      { action: "compensate" },
    );
    await run(createRealmWorker(ledger), "create-realm", { input }, { action: "compensate" });
    expect(ledger.entries().map((e) => e.kind)).toEqual([
      "realm.created",
      "client.created",
      "client.deleted",
      "realm.deleted",
    ]);
  });
});

describe("seed 001's order service", () => {
  it("fails a duplicate order id from another run and an update of an unknown order with the seed's ValueError", async () => {
    const ledger = new Ledger();
    const worker = seed001OrderService(ledger);
    await run(worker, "create-order", { input: { orderId: "DUP-001", numItems: 2 } }, { runId: "run-a" });
    // Redelivery within the same run is not a duplicate order.
    await run(worker, "create-order", { input: { orderId: "DUP-001", numItems: 2 } }, { runId: "run-a" });
    const duplicate = await Promise.resolve(
      run(worker, "create-order", { input: { orderId: "DUP-001", numItems: 3 } }, { runId: "run-b" }),
    ).catch((e: unknown) => e);
    expect(duplicate).toMatchObject({
      name: "ValueError",
      message: "Duplicate order ID: DUP-001 already exists. Cannot create duplicate order.",
    });
    expect(isNonRetryable(duplicate)).toBe(false);
    const missing = await Promise.resolve(
      run(worker, "update-order-status", { input: { orderId: "NEVER-EXISTED", status: "shipped" } }),
    ).catch((e: unknown) => e);
    expect(missing).toMatchObject({
      name: "ValueError",
      message: "Order NEVER-EXISTED not found. Cannot update status. Sending to DLQ.",
    });
    await run(
      worker,
      "update-order-status",
      { input: { orderId: "DUP-001", status: "shipped" } },
      { runId: "run-c" },
    );
    expect(ledger.count("order.status-updated")).toBe(1);
  });
});

describe("the ledger", () => {
  it("reads a file-backed ledger back after a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "eventloom-ledger-"));
    try {
      const path = join(dir, "orders.jsonl");
      new Ledger(path).applyOnce("run-1/create-order/do", "order.created", () => ({ orderId: "A" }));
      const again = new Ledger(path);
      let ran = false;
      const { value, applied } = again.applyOnce(
        "run-1/create-order/do",
        "order.created",
        () => ((ran = true), { orderId: "B" }),
      );
      expect({ value, applied, ran, count: again.count() }).toEqual({
        value: { orderId: "A" },
        applied: false,
        ran: false,
        count: 1,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
