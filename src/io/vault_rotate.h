/*
 * vault_rotate.h - the vault's key rotation, for voxctl (`voxctl
 * credentials rotate`) and the tests; it needs the database and the
 * keyring, not the vault's endpoints.
 */
#ifndef VOX_VAULT_ROTATE_H
#define VOX_VAULT_ROTATE_H

#include "core/common.h"

#include <libpq-fe.h>

#include "core/vault.h"

/*
 * Re-encrypt every org_credentials row whose key_version is not the
 * ring's active version: batches of `batch` rows (SELECT ... FOR UPDATE
 * SKIP LOCKED), each opened with its old key and sealed with the active
 * one in its own transaction, until none is left. Readers keep working:
 * a row is always whole under one key the ring holds. c is borrowed and
 * must not be inside a transaction. *rotated gets the number of rows
 * re-encrypted (also on failure, for what was committed). A row that
 * cannot be opened is skipped and left as it is; the call then returns
 * VOX_E_CRYPTO with err naming the first such row (its id, never a
 * secret). VOX_E_UNAVAILABLE / VOX_E_INTERNAL on database errors.
 * progress (may be NULL) is called after each committed batch with the
 * rows re-encrypted so far.
 */
typedef void (*vox_rotate_progress_fn)(int rotated, void *ctx);
vox_status vox_vault_rotate(int *rotated, PGconn *c, const vox_keyring *kr,
			    int batch, vox_rotate_progress_fn progress, void *ctx,
			    char *err, size_t errlen) VOX_MUST_CHECK;

#endif
