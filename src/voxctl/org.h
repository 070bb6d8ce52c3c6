/*
 * org.h - creating an organization with its opening balance, shared by
 * `voxctl org create` and `voxctl demo` (cmd_org.c).
 */
#ifndef VOX_VOXCTL_ORG_H
#define VOX_VOXCTL_ORG_H

#include "voxctl/voxctl.h"

#include <libpq-fe.h>

typedef struct voxctl_org {
	const char *id;          /* canonical UUID text, or NULL for a new one */
	const char *name;
	const char *email;
	const char *plan;        /* starter | professional | enterprise */
	int64_t balance;         /* opening balance, >= 0 */
	int64_t debt_limit;      /* >= 0 */
	int64_t low_balance;     /* >= 0 */
} voxctl_org;

/*
 * In one transaction insert the organizations row and, when the opening
 * balance is not zero, its 'topup' ledger row ('opening balance'). On
 * success id_out (37 bytes) gets the org's id. Returns an exit code with
 * the error printed: EXIT_SERVER for a duplicate id or a refusal,
 * EXIT_UNREACHABLE when Postgres went away.
 */
int voxctl_org_insert(PGconn *c, const voxctl_org *o, char id_out[37]);

/* Connect to VOX_PG_DSN (the owner role); the exit code, printed. */
int voxctl_pg_connect(PGconn **c);

#endif
