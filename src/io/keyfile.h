/*
 * keyfile.h - loading vox-vault's key ring from a file that only its owner
 * may read, and adding a key to that file durably. A file readable or
 * writable by group or others is refused before a byte of it is read.
 */
#ifndef VOX_KEYFILE_H
#define VOX_KEYFILE_H

#include "core/vault.h"

/* Load and parse path (format: see vox_keyring_parse). VOX_E_FORBIDDEN
 * when its mode allows group/other access, VOX_E_CONFIG when it is
 * missing or malformed; err never contains key material. */
vox_status vox_keyfile_load(vox_keyring **out, const char *path, char *err,
			    size_t errlen) VOX_MUST_CHECK;

/*
 * Append line (len bytes: "<version> <base64 key>\n") to the key file at
 * path, created when missing. Durable and atomic: the old content (checked
 * as vox_keyfile_load checks it) and the line go to a new file in the
 * same directory, mode 0600 and the old file's owner and group, which is
 * fsync'd, renamed over path, and the directory fsync'd; a crash leaves
 * the old ring or the new one, never a torn or an empty file. The old
 * content is held in wiped memory. VOX_E_FORBIDDEN / VOX_E_CONFIG as for
 * loading, VOX_E_INTERNAL when a write, sync or rename fails (err says
 * which; never key material).
 */
vox_status vox_keyfile_append(const char *path, const char *line, size_t len,
			      char *err, size_t errlen) VOX_MUST_CHECK;

#endif
