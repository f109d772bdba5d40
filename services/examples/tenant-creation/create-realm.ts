/**
 * Seed 003's realm-service (examples/tenant-creation/worker-create-realm.yaml): step `create-realm`
 * creates the tenant's realm; its compensation (`com.example.tenant.deleteRealm`) deletes it. Applied once
 * per run.
 *
 *   tsx services/examples/tenant-creation/create-realm.ts
 */
import { defineWorker } from "../../sdk/index.ts";
import type { WorkerDefinition } from "../../sdk/index.ts";
import type { Ledger } from "../support/ledger.ts";
import { effectKey, ledgerFromEnv } from "../support/ledger.ts";
import { commandData, text } from "../support/input.ts";
import { runExample } from "../support/main.ts";

export interface Realm {
  realmId: string;
  realmName: string;
  tenantId: string;
}

export function createRealmWorker(ledger: Ledger = ledgerFromEnv("create-realm")): WorkerDefinition {
  return defineWorker({
    steps: {
      "create-realm": {
        handle: (ctx) => {
          const { input } = commandData(ctx.data);
          const tenantId = text(input, "tenantId");
          const realmName = text(input, "realmName");
          const { value } = ledger.applyOnce(effectKey(ctx), "realm.created", (): Realm => ({
            realmId: `realm-${tenantId}-${realmName}`,
            realmName,
            tenantId,
          }));
          ctx.log.info("realm created", { ...value });
          return value;
        },
        compensate: (ctx) => {
          const created = ledger.get(effectKey({ ...ctx, action: "do" }));
          const { value } = ledger.applyOnce(effectKey(ctx), "realm.deleted", () => ({
            deleted: created !== undefined,
            realm: created?.value ?? null,
          }));
          ctx.log.info("realm deleted", { ...value });
          return value;
        },
      },
    },
  });
}

if (import.meta.main) await runExample(createRealmWorker());
