/*
 * migrate.h - ordered SQL migrations, embedded in the binary at build time.
 * Each runs in its own transaction and is recorded in schema_migrations
 * with a checksum; an advisory lock makes concurrent runs safe, and a
 * re-run applies nothing.
 */
#ifndef VOX_MIGRATE_H
#define VOX_MIGRATE_H

#include "core/buf.h"

#include <libpq-fe.h>

typedef struct vox_migration {
	const char *name; /* "0001_seed_schema" */
	const char *sql;
	size_t len;
} vox_migration;

/* Every migration of the source tree, in order (generated). */
extern const vox_migration vox_migrations[];
extern const size_t vox_migrations_count;

/*
 * Apply the migrations not yet recorded, in order. *applied gets how many
 * ran now. On failure err names the migration and the server's message;
 * the failing migration left no trace (its transaction rolled back).
 * VOX_E_CONFLICT when an applied migration's text changed since.
 */
vox_status vox_migrate_apply(PGconn *c, const vox_migration *m, size_t n,
			     int *applied, vox_buf *err) VOX_MUST_CHECK;

/* Append one line per migration: "<name> applied <time>" or
 * "<name> pending" (or "changed" when its checksum differs). *pending gets
 * the number not applied. */
vox_status vox_migrate_status(PGconn *c, const vox_migration *m, size_t n,
			      vox_buf *out, int *pending,
			      vox_buf *err) VOX_MUST_CHECK;

#endif
