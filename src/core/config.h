/*
 * config.h - configuration from VOX_* environment variables, declared as one
 * table per binary and parsed once into an immutable struct. Every bad or
 * missing variable is reported in one pass, so an operator fixes them all at
 * once. Pure: the environment is read through a caller-supplied function.
 */
#ifndef VOX_CONFIG_H
#define VOX_CONFIG_H

#include "core/buf.h"

typedef enum vox_cfg_type {
	VOX_CFG_STR,    /* const char *, borrowed from the environment */
	VOX_CFG_SECRET, /* like STR, but never printed by --help or logs */
	VOX_CFG_INT,    /* int64_t, checked against [min, max] */
	VOX_CFG_BOOL,   /* bool: 1/0, true/false, yes/no, on/off */
	VOX_CFG_ENUM,   /* const char *, one of the '|'-separated choices */
} vox_cfg_type;

typedef struct vox_cfg_var {
	const char *name;    /* e.g. "VOX_NATS_URL" */
	vox_cfg_type type;
	const char *def;     /* default as text; NULL means required */
	int64_t min, max;    /* VOX_CFG_INT only */
	const char *choices; /* VOX_CFG_ENUM only, "debug|info|warn|error" */
	size_t offset;       /* where the value goes in the output struct */
	const char *help;
} vox_cfg_var;

/* Returns the value of name or NULL when unset. */
typedef const char *(*vox_cfg_getenv)(const char *name, void *ctx);

/*
 * Fill the struct at out from the environment. On VOX_E_CONFIG, errors holds
 * one line per problem ("VOX_BATCH: must be an integer in 1..4096") and out
 * may be partly written. Strings in out point into what getenv returned (or
 * into the static defaults) and must outlive out.
 */
vox_status vox_cfg_parse(void *out, const vox_cfg_var *vars, size_t nvars,
			 vox_cfg_getenv getenv_fn, void *ctx,
			 vox_buf *errors) VOX_MUST_CHECK;

/* Print the table as --help text: name, default, help. Secrets show no
 * default value. */
void vox_cfg_help(FILE *f, const vox_cfg_var *vars, size_t nvars);

/* Parse a decimal int64 in [min, max]; the whole string must be a number. */
bool vox_parse_i64(int64_t *out, const char *s, int64_t min, int64_t max);

#endif
