/*
 * invariants.h - the money invariants of billing.md as SQL, shared by the
 * tests that move money (test_wallet, test_chaos, test_scaleout). Each
 * query counts the rows that break its rule, so 0 means it holds. The
 * test records every org's opening balance in a table
 * it_opening (org_id uuid PRIMARY KEY, opening bigint) before any event; the
 * rate is the default 70 per minute.
 */
#ifndef VOX_TEST_INVARIANTS_H
#define VOX_TEST_INVARIANTS_H

#include "core/common.h"

#include <stdio.h>

#include <libpq-fe.h>

typedef struct th_invariant {
	const char *name;
	const char *sql; /* counts violations */
} th_invariant;

extern const th_invariant th_invariants[];
extern const size_t th_ninvariants;

/* Run every invariant on c; name each broken one on out (with its count of
 * rows) and return how many were broken. */
int th_invariants_broken(PGconn *c, FILE *out);

#endif
