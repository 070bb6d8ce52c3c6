/*
 * json.c - strict JSON parser (see json.h).
 */
#include "core/json.h"

struct vox_json {
	vox_json_type type;
	bool b;
	long long i;
	double d;
	char *s; /* string, NUL-terminated, slen bytes */
	size_t slen;
	size_t n; /* array elements / object members */
	size_t cap;
	vox_json **items;
	char **keys; /* objects only */
	size_t *klens;
};

typedef struct parser {
	const unsigned char *p;
	const unsigned char *end;
} parser;

typedef struct sbuf {
	char *data;
	size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const void *src, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 32;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = vox_realloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, src, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static vox_json *new_value(vox_json_type t)
{
	vox_json *v = vox_calloc(1, sizeof(*v));
	v->type = t;
	return v;
}

void vox_json_free(vox_json *v)
{
	if (!v)
		return;
	for (size_t k = 0; k < v->n; k++) {
		vox_json_free(v->items[k]);
		if (v->keys)
			free(v->keys[k]);
	}
	free(v->items);
	free(v->keys);
	free(v->klens);
	free(v->s);
	free(v);
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static vox_json *parse_value(parser *ps, int depth);

/* Length of a valid UTF-8 sequence (2..4 bytes) at p, or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t avail = (size_t)(end - p);
	unsigned c = p[0];
	unsigned lo = 0x80, hi = 0xBF;
	size_t n;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F; /* no encoded surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (p[k] < 0x80 || p[k] > 0xBF)
			return 0;
	return n;
}

static int hex4(const unsigned char *p, const unsigned char *end)
{
	int v = 0;
	if (end - p < 4)
		return -1;
	for (int k = 0; k < 4; k++) {
		unsigned c = p[k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (int)(c - 'A' + 10);
		else
			return -1;
	}
	return v;
}

static void put_utf8(sbuf *b, unsigned long cp)
{
	unsigned char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	sb_put(b, u, n);
}

/* Parse a string at ps->p (on the opening quote) into out. */
static bool parse_string(parser *ps, sbuf *out)
{
	ps->p++; /* the quote */
	sb_put(out, "", 0);
	while (ps->p < ps->end) {
		unsigned c = *ps->p;
		if (c == '"') {
			ps->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c >= 0x80) {
			size_t n = utf8_len(ps->p, ps->end);
			if (n == 0)
				return false;
			sb_put(out, ps->p, n);
			ps->p += n;
			continue;
		}
		if (c != '\\') {
			sb_put(out, ps->p, 1);
			ps->p++;
			continue;
		}
		if (++ps->p >= ps->end)
			return false;
		char e = (char)*ps->p++;
		char ch;
		switch (e) {
		case '"': ch = '"'; break;
		case '\\': ch = '\\'; break;
		case '/': ch = '/'; break;
		case 'b': ch = '\b'; break;
		case 'f': ch = '\f'; break;
		case 'n': ch = '\n'; break;
		case 'r': ch = '\r'; break;
		case 't': ch = '\t'; break;
		case 'u': {
			int hi = hex4(ps->p, ps->end);
			if (hi < 0)
				return false;
			ps->p += 4;
			unsigned long cp = (unsigned long)hi;
			if (hi >= 0xDC00 && hi <= 0xDFFF)
				return false; /* lone low surrogate */
			if (hi >= 0xD800 && hi <= 0xDBFF) {
				if (ps->end - ps->p < 6 || ps->p[0] != '\\' ||
				    ps->p[1] != 'u')
					return false;
				int lo = hex4(ps->p + 2, ps->end);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return false;
				ps->p += 6;
				cp = 0x10000 + (((unsigned long)hi - 0xD800) << 10) +
				     ((unsigned long)lo - 0xDC00);
			}
			put_utf8(out, cp);
			continue;
		}
		default:
			return false;
		}
		sb_put(out, &ch, 1);
	}
	return false; /* unterminated */
}

static bool is_digit(const parser *ps)
{
	return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static vox_json *parse_number(parser *ps)
{
	const unsigned char *start = ps->p;
	bool integer = true;
	if (*ps->p == '-')
		ps->p++;
	if (!is_digit(ps))
		return NULL;
	if (*ps->p == '0')
		ps->p++;
	else
		while (is_digit(ps))
			ps->p++;
	if (ps->p < ps->end && *ps->p == '.') {
		integer = false;
		ps->p++;
		if (!is_digit(ps))
			return NULL;
		while (is_digit(ps))
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		integer = false;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!is_digit(ps))
			return NULL;
		while (is_digit(ps))
			ps->p++;
	}
	size_t n = (size_t)(ps->p - start);
	char *lex = vox_strndup((const char *)start, n);
	vox_json *v = NULL;
	if (integer) {
		errno = 0;
		long long i = strtoll(lex, NULL, 10);
		if (errno == 0) {
			v = new_value(VOX_JSON_INT);
			v->i = i;
			v->d = (double)i;
		}
	}
	if (!v) {
		v = new_value(VOX_JSON_NUMBER);
		v->d = strtod(lex, NULL);
	}
	free(lex);
	return v;
}

static bool literal(parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static void push(vox_json *v, vox_json *item, char *key, size_t klen)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 4;
		v->items = vox_realloc(v->items, v->cap * sizeof(*v->items));
		if (v->type == VOX_JSON_OBJECT) {
			v->keys = vox_realloc(v->keys, v->cap * sizeof(*v->keys));
			v->klens = vox_realloc(v->klens,
					       v->cap * sizeof(*v->klens));
		}
	}
	v->items[v->n] = item;
	if (v->type == VOX_JSON_OBJECT) {
		v->keys[v->n] = key;
		v->klens[v->n] = klen;
	}
	v->n++;
}

static vox_json *parse_array(parser *ps, int depth)
{
	vox_json *v = new_value(VOX_JSON_ARRAY);
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return v;
	}
	for (;;) {
		vox_json *item = parse_value(ps, depth + 1);
		if (!item)
			goto fail;
		push(v, item, NULL, 0);
		skip_ws(ps);
		if (ps->p >= ps->end)
			goto fail;
		if (*ps->p == ']') {
			ps->p++;
			return v;
		}
		if (*ps->p != ',')
			goto fail;
		ps->p++;
	}
fail:
	vox_json_free(v);
	return NULL;
}

static vox_json *parse_object(parser *ps, int depth)
{
	vox_json *v = new_value(VOX_JSON_OBJECT);
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return v;
	}
	for (;;) {
		sbuf key = {0};
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"' || !parse_string(ps, &key)) {
			free(key.data);
			goto fail;
		}
		for (size_t k = 0; k < v->n; k++) {
			if (v->klens[k] == key.len &&
			    memcmp(v->keys[k], key.data, key.len) == 0) {
				free(key.data); /* duplicate key */
				goto fail;
			}
		}
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			free(key.data);
			goto fail;
		}
		ps->p++;
		vox_json *item = parse_value(ps, depth + 1);
		if (!item) {
			free(key.data);
			goto fail;
		}
		push(v, item, key.data, key.len);
		skip_ws(ps);
		if (ps->p >= ps->end)
			goto fail;
		if (*ps->p == '}') {
			ps->p++;
			return v;
		}
		if (*ps->p != ',')
			goto fail;
		ps->p++;
	}
fail:
	vox_json_free(v);
	return NULL;
}

static vox_json *parse_value(parser *ps, int depth)
{
	if (depth > VOX_JSON_MAX_DEPTH)
		return NULL;
	skip_ws(ps);
	if (ps->p >= ps->end)
		return NULL;
	switch (*ps->p) {
	case '{':
		return parse_object(ps, depth);
	case '[':
		return parse_array(ps, depth);
	case '"': {
		sbuf s = {0};
		if (!parse_string(ps, &s)) {
			free(s.data);
			return NULL;
		}
		vox_json *v = new_value(VOX_JSON_STRING);
		v->s = s.data;
		v->slen = s.len;
		return v;
	}
	case 't':
		if (!literal(ps, "true"))
			return NULL;
		vox_json *t = new_value(VOX_JSON_BOOL);
		t->b = true;
		return t;
	case 'f':
		return literal(ps, "false") ? new_value(VOX_JSON_BOOL) : NULL;
	case 'n':
		return literal(ps, "null") ? new_value(VOX_JSON_NULL) : NULL;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps);
		return NULL;
	}
}

vox_json *vox_json_parse(const char *text, size_t len, size_t *err_at)
{
	if (err_at)
		*err_at = 0;
	if (!text)
		return NULL;
	parser ps = {(const unsigned char *)text,
		     (const unsigned char *)text + len};
	vox_json *v = parse_value(&ps, 1);
	if (v) {
		skip_ws(&ps);
		if (ps.p == ps.end)
			return v;
		vox_json_free(v); /* trailing garbage */
	}
	if (err_at)
		*err_at = (size_t)(ps.p - (const unsigned char *)text);
	return NULL;
}

vox_json_type vox_json_type_of(const vox_json *v)
{
	return v ? v->type : VOX_JSON_NULL;
}

const char *vox_json_type_name(vox_json_type t)
{
	switch (t) {
	case VOX_JSON_NULL: return "null";
	case VOX_JSON_BOOL: return "bool";
	case VOX_JSON_INT: return "integer";
	case VOX_JSON_NUMBER: return "number";
	case VOX_JSON_STRING: return "string";
	case VOX_JSON_ARRAY: return "array";
	case VOX_JSON_OBJECT: return "object";
	}
	return "?";
}

size_t vox_json_len(const vox_json *v)
{
	return v && (v->type == VOX_JSON_ARRAY || v->type == VOX_JSON_OBJECT) ? v->n : 0;
}

const vox_json *vox_json_at(const vox_json *v, size_t i)
{
	return i < vox_json_len(v) ? v->items[i] : NULL;
}

const char *vox_json_key_at(const vox_json *v, size_t i)
{
	return v && v->type == VOX_JSON_OBJECT && i < v->n ? v->keys[i] : NULL;
}

const vox_json *vox_json_get(const vox_json *obj, const char *key)
{
	if (!obj || obj->type != VOX_JSON_OBJECT)
		return NULL;
	size_t n = strlen(key);
	for (size_t k = 0; k < obj->n; k++)
		if (obj->klens[k] == n && memcmp(obj->keys[k], key, n) == 0)
			return obj->items[k];
	return NULL;
}

const char *vox_json_str(const vox_json *v)
{
	return v && v->type == VOX_JSON_STRING ? v->s : NULL;
}

size_t vox_json_str_len(const vox_json *v)
{
	return v && v->type == VOX_JSON_STRING ? v->slen : 0;
}

long long vox_json_int(const vox_json *v)
{
	return v && v->type == VOX_JSON_INT ? v->i : 0;
}

double vox_json_number(const vox_json *v)
{
	return v && (v->type == VOX_JSON_INT || v->type == VOX_JSON_NUMBER) ? v->d : 0.0;
}

bool vox_json_bool(const vox_json *v)
{
	return v && v->type == VOX_JSON_BOOL && v->b;
}
