/*
 * keyfile.h - loading vox-vault's key ring from a file that only its owner
 * may read. A file readable or writable by group or others is refused
 * before a byte of it is read.
 */
#ifndef VOX_KEYFILE_H
#define VOX_KEYFILE_H

#include "core/vault.h"

/* Load and parse path (format: see vox_keyring_parse). VOX_E_FORBIDDEN
 * when its mode allows group/other access, VOX_E_CONFIG when it is
 * missing or malformed; err never contains key material. */
vox_status vox_keyfile_load(vox_keyring **out, const char *path, char *err,
			    size_t errlen) VOX_MUST_CHECK;

#endif
