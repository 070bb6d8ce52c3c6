/*
 * config.c - table-driven parsing of VOX_* variables (see config.h).
 */
#include "core/config.h"

#include <strings.h>

bool vox_parse_i64(int64_t *out, const char *s, int64_t min, int64_t max)
{
	if (!s || !*s)
		return false;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return false;
	*out = (int64_t)v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *yes[] = {"1", "true", "yes", "on"};
	static const char *no[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < VOX_NELEM(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool in_choices(const char *s, const char *choices)
{
	size_t n = strlen(s);
	const char *p = choices;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, s, n) == 0)
			return true;
		if (!bar)
			break;
		p = bar + 1;
	}
	return false;
}

vox_status vox_cfg_parse(void *out, const vox_cfg_var *vars, size_t nvars,
			 vox_cfg_getenv getenv_fn, void *ctx, vox_buf *errors)
{
	char *base = out;
	bool ok = true;

	for (size_t i = 0; i < nvars; i++) {
		const vox_cfg_var *v = &vars[i];
		const char *s = getenv_fn(v->name, ctx);
		if (s == NULL || *s == '\0')
			s = v->def;
		if (s == NULL) {
			vox_buf_printf(errors, "%s: required, not set\n", v->name);
			ok = false;
			continue;
		}
		switch (v->type) {
		case VOX_CFG_STR:
		case VOX_CFG_SECRET:
			*(const char **)(void *)(base + v->offset) = s;
			break;
		case VOX_CFG_ENUM:
			if (!in_choices(s, v->choices)) {
				vox_buf_printf(errors, "%s: must be one of %s\n",
					       v->name, v->choices);
				ok = false;
				break;
			}
			*(const char **)(void *)(base + v->offset) = s;
			break;
		case VOX_CFG_INT: {
			int64_t n;
			if (!vox_parse_i64(&n, s, v->min, v->max)) {
				vox_buf_printf(errors,
					       "%s: must be an integer in %" PRId64
					       "..%" PRId64 "\n",
					       v->name, v->min, v->max);
				ok = false;
				break;
			}
			*(int64_t *)(void *)(base + v->offset) = n;
			break;
		}
		case VOX_CFG_BOOL: {
			bool b;
			if (!parse_bool(s, &b)) {
				vox_buf_printf(errors,
					       "%s: must be true or false\n",
					       v->name);
				ok = false;
				break;
			}
			*(bool *)(void *)(base + v->offset) = b;
			break;
		}
		}
	}
	return ok ? VOX_OK : VOX_E_CONFIG;
}

void vox_cfg_help(FILE *f, const vox_cfg_var *vars, size_t nvars)
{
	fprintf(f, "Environment:\n");
	for (size_t i = 0; i < nvars; i++) {
		const vox_cfg_var *v = &vars[i];
		fprintf(f, "  %-26s %s", v->name, v->help);
		if (v->def == NULL)
			fprintf(f, " (required)");
		else if (v->type == VOX_CFG_SECRET)
			fprintf(f, " (secret)");
		else if (*v->def)
			fprintf(f, " (default: %s)", v->def);
		if (v->type == VOX_CFG_INT)
			fprintf(f, " [%" PRId64 "..%" PRId64 "]", v->min, v->max);
		if (v->type == VOX_CFG_ENUM)
			fprintf(f, " [%s]", v->choices);
		fputc('\n', f);
	}
}
