/*
 * status.c - names and classes of vox_status values. Kept as one table so
 * that adding a status means adding one row.
 */
#include "core/common.h"

static const struct {
	const char *name;
	bool transient;
	int code;
} status_table[VOX_STATUS_COUNT] = {
	[VOX_OK] = {"ok", false, 200},
	[VOX_E_DECODE] = {"decode", false, 400},
	[VOX_E_INVALID] = {"invalid", false, 400},
	[VOX_E_ORG_MISMATCH] = {"org_mismatch", false, 400},
	[VOX_E_UNKNOWN_ORG] = {"unknown_org", false, 404},
	[VOX_E_CONFLICT] = {"conflict", false, 409},
	[VOX_E_TOO_LARGE] = {"too_large", false, 413},
	[VOX_E_NOT_FOUND] = {"not_found", false, 404},
	[VOX_E_FORBIDDEN] = {"forbidden", false, 403},
	[VOX_E_CONFIG] = {"config", false, 500},
	[VOX_E_USAGE] = {"usage", false, 400},
	[VOX_E_CRYPTO] = {"crypto", false, 500},
	[VOX_E_UNAVAILABLE] = {"unavailable", true, 503},
	[VOX_E_TIMEOUT] = {"timeout", true, 503},
	[VOX_E_RETRY] = {"retry", true, 503},
	[VOX_E_INTERNAL] = {"internal", false, 500},
};

const char *vox_status_str(vox_status s)
{
	if ((unsigned)s >= VOX_STATUS_COUNT)
		return "unknown";
	return status_table[s].name;
}

bool vox_status_is_transient(vox_status s)
{
	return (unsigned)s < VOX_STATUS_COUNT && status_table[s].transient;
}

int vox_status_code(vox_status s)
{
	if ((unsigned)s >= VOX_STATUS_COUNT)
		return 500;
	return status_table[s].code;
}

vox_status vox_error_set(vox_error *err, vox_status st, const char *code,
			 const char *field, const char *fmt, ...)
{
	if (err == NULL)
		return st;
	err->status = st;
	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	char text[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (field && *field)
		snprintf(err->message, sizeof(err->message), "%s: %s", field, text);
	else
		snprintf(err->message, sizeof(err->message), "%s", text);
	return st;
}
