/*
 * vox-test-actor - a consuming actor built on the runtime for the runtime's
 * own integration tests. It consumes payment.succeeded.* and keeps, with
 * the same idempotency pattern the real actors use, a total per run:
 *
 *   rt_processed(event_id)   one row per event applied (the idempotency key)
 *   rt_total(total, count)   sum of amounts and number of events applied
 *
 * Rules that let tests reach every path of the runtime:
 *   amount_pence = 13         refused as a conflict (dead-lettered, 409)
 *   description "poison-sql"  makes the batch's SQL fail (isolated, 500)
 *   amount_pence >= 1000      emits an alert.low_balance through the outbox
 *   amount_pence = 14         emits an alert that breaks the contract (its
 *                             debt limit is negative): the runtime must
 *                             apply the event and log the alert instead
 *
 * It also serves two endpoints for the services-protocol tests:
 *   test.echo.<org>   replies with the request body
 *   test.fail.<org>   replies with a 409 error
 */
#include "core/common.h"

#include <sodium.h>

#include "core/buf.h"
#include "io/actor.h"
#include "io/pg.h"

static void alert_id_for(const vox_str *event_id, vox_uuid *out)
{
	unsigned char h[16];
	static const char hex[] = "0123456789abcdef";
	crypto_generichash(h, sizeof(h), (const unsigned char *)event_id->ptr,
			   event_id->len, NULL, 0);
	int k = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out->s[k++] = '-';
		out->s[k++] = hex[h[i] >> 4];
		out->s[k++] = hex[h[i] & 15];
	}
	out->s[36] = '\0';
}

static vox_status apply(void *ctx, vox_tx *tx, vox_item *items, size_t n)
{
	VOX_UNUSED(ctx);
	PGconn *pg = vox_tx_pg(tx);
	vox_buf ids, amounts;
	vox_status st = VOX_OK;
	bool poison = false;
	vox_buf_init(&ids);
	vox_buf_init(&amounts);
	vox_buf_putc(&ids, '{');
	vox_buf_putc(&amounts, '{');
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		const vox_payment_succeeded *p = &items[i].ev.u.payment_succeeded;
		if (p->amount_pence == 13) {
			vox_item_reject(&items[i], VOX_E_CONFLICT, "conflict",
					"amount_pence",
					"13 is refused by the test actor");
			continue;
		}
		if (p->description.ptr && p->description.len == 10 &&
		    memcmp(p->description.ptr, "poison-sql", 10) == 0)
			poison = true;
		vox_buf_puts(&ids, used ? ",\"" : "\"");
		vox_buf_append(&ids, p->event_id.ptr, p->event_id.len);
		vox_buf_putc(&ids, '"');
		vox_buf_printf(&amounts, "%s%" PRId64, used ? "," : "", p->amount_pence);
		used++;
	}
	vox_buf_putc(&ids, '}');
	vox_buf_putc(&amounts, '}');
	if (poison) {
		/* a statement that fails for the whole batch */
		PGresult *r = PQexec(pg, "INSERT INTO rt_check (v) VALUES (-1)");
		st = vox_pg_status(pg, r);
		PQclear(r);
		if (st != VOX_OK)
			goto out;
	}
	if (used) {
		const char *params[2] = {ids.data, amounts.data};
		PGresult *r = PQexecParams(pg,
			"WITH input AS (SELECT DISTINCT ON (event_id) event_id, amount"
			"  FROM unnest($1::text[], $2::bigint[]) AS t(event_id, amount)),"
			" fresh AS (INSERT INTO rt_processed (event_id)"
			"  SELECT event_id FROM input ON CONFLICT DO NOTHING"
			"  RETURNING event_id)"
			" UPDATE rt_total SET"
			"  total = total + (SELECT coalesce(sum(amount), 0)"
			"   FROM input JOIN fresh USING (event_id)),"
			"  count = count + (SELECT count(*) FROM fresh)",
			2, NULL, params, NULL, NULL, 0);
		st = vox_pg_status(pg, r);
		PQclear(r);
		if (st != VOX_OK)
			goto out;
	}
	for (size_t i = 0; i < n && st == VOX_OK; i++) {
		const vox_payment_succeeded *p = &items[i].ev.u.payment_succeeded;
		if (vox_item_refused(&items[i]) ||
		    (p->amount_pence < 1000 && p->amount_pence != 14))
			continue;
		vox_event alert;
		memset(&alert, 0, sizeof(alert));
		alert.kind = VOX_ALERT_LOW_BALANCE;
		alert_id_for(&p->event_id, &alert.u.wallet.alert_id);
		alert.u.wallet.org_id = p->org_id;
		alert.u.wallet.balance_pence = p->amount_pence;
		alert.u.wallet.debt_limit_pence = p->amount_pence == 14 ? -1 : 500;
		alert.u.wallet.amount_pence = 1000;
		alert.u.wallet.created_at = p->occurred_at;
		st = vox_tx_emit(tx, &alert);
	}
out:
	vox_buf_release(&ids);
	vox_buf_release(&amounts);
	return st;
}

static void echo(vox_request *req, void *ctx)
{
	size_t len;
	VOX_UNUSED(ctx);
	const char *data = vox_request_data(req, &len);
	vox_request_respond(req, data, len);
}

static void refuse(vox_request *req, void *ctx)
{
	VOX_UNUSED(ctx);
	vox_request_failf(req, VOX_E_CONFLICT, "conflict", NULL,
			  "refused on purpose");
}

static vox_status setup(vox_actor *a, void *ctx)
{
	VOX_UNUSED(ctx);
	vox_service *svc = vox_actor_service(a);
	vox_status st = vox_service_add_endpoint(svc, "echo", "test.echo.*", echo, NULL);
	if (st == VOX_OK)
		st = vox_service_add_endpoint(svc, "fail", "test.fail.*", refuse, NULL);
	return st;
}

int main(int argc, char **argv)
{
	static const vox_input inputs[] = {
		{"vox-test-actor", "payment.succeeded.*"},
	};
	static const vox_actor_def def = {
		.name = "vox-test-actor",
		.description = "Test actor of the runtime's integration tests",
		.inputs = inputs,
		.ninputs = 1,
		.handler = {NULL, apply, NULL, NULL},
		.setup = setup,
	};
	if (sodium_init() < 0)
		return 1;
	return vox_actor_main(&def, argc, argv);
}
