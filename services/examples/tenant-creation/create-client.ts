/**
 * Seed 003's client-service (examples/tenant-creation/worker-create-client.yaml): step `create-client`
 * registers the tenant's client in the realm `create-realm` created (its output arrives as
 * `steps["create-realm"]`); its compensation deletes the client. Applied once per run.
 *
 *   tsx services/examples/tenant-creation/create-client.ts
 */
import { defineWorker, NonRetryableError } from "../../sdk/index.ts";
import type { WorkerDefinition } from "../../sdk/index.ts";
import type { Ledger } from "../support/ledger.ts";
import { effectKey, ledgerFromEnv } from "../support/ledger.ts";
import { commandData, text } from "../support/input.ts";
import { runExample } from "../support/main.ts";

export interface Client {
  clientId: string;
  realmId: string;
}

export function createClientWorker(ledger: Ledger = ledgerFromEnv("create-client")): WorkerDefinition {
  return defineWorker({
    steps: {
      "create-client": {
        handle: (ctx) => {
          const { input, steps } = commandData(ctx.data);
          const realmId = steps["create-realm"]?.realmId;
          if (typeof realmId !== "string") {
            throw new NonRetryableError(
              "the command carries no create-realm output (steps.create-realm.realmId)",
              { name: "InvalidInput" },
            );
          }
          const tenantId = text(input, "tenantId");
          const { value } = ledger.applyOnce(effectKey(ctx), "client.created", (): Client => ({
            clientId: `client-${tenantId}`,
            realmId,
          }));
          ctx.log.info("client created", { ...value });
          return value;
        },
        compensate: (ctx) => {
          const created = ledger.get(effectKey({ ...ctx, action: "do" }));
          const { value } = ledger.applyOnce(effectKey(ctx), "client.deleted", () => ({
            deleted: created !== undefined,
            client: created?.value ?? null,
          }));
          ctx.log.info("client deleted", { ...value });
          return value;
        },
      },
    },
  });
}

if (import.meta.main) await runExample(createClientWorker());
