/*
 * json.c - strict JSON parser for tests (see json.h).
 */
#include "json.h"

struct tj_value {
	tj_type type;
	bool b;
	long long i;
	double d;
	char *s; /* string, NUL-terminated, slen bytes */
	size_t slen;
	size_t n; /* array elements / object members */
	size_t cap;
	tj_value **items;
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

static tj_value *new_value(tj_type t)
{
	tj_value *v = vox_calloc(1, sizeof(*v));
	v->type = t;
	return v;
}

void tj_free(tj_value *v)
{
	if (!v)
		return;
	for (size_t k = 0; k < v->n; k++) {
		tj_free(v->items[k]);
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

static tj_value *parse_value(parser *ps, int depth);

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

static tj_value *parse_number(parser *ps)
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
	tj_value *v = NULL;
	if (integer) {
		errno = 0;
		long long i = strtoll(lex, NULL, 10);
		if (errno == 0) {
			v = new_value(TJ_INT);
			v->i = i;
			v->d = (double)i;
		}
	}
	if (!v) {
		v = new_value(TJ_NUMBER);
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

static void push(tj_value *v, tj_value *item, char *key, size_t klen)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 4;
		v->items = vox_realloc(v->items, v->cap * sizeof(*v->items));
		if (v->type == TJ_OBJECT) {
			v->keys = vox_realloc(v->keys, v->cap * sizeof(*v->keys));
			v->klens = vox_realloc(v->klens,
					       v->cap * sizeof(*v->klens));
		}
	}
	v->items[v->n] = item;
	if (v->type == TJ_OBJECT) {
		v->keys[v->n] = key;
		v->klens[v->n] = klen;
	}
	v->n++;
}

static tj_value *parse_array(parser *ps, int depth)
{
	tj_value *v = new_value(TJ_ARRAY);
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return v;
	}
	for (;;) {
		tj_value *item = parse_value(ps, depth + 1);
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
	tj_free(v);
	return NULL;
}

static tj_value *parse_object(parser *ps, int depth)
{
	tj_value *v = new_value(TJ_OBJECT);
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
		tj_value *item = parse_value(ps, depth + 1);
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
	tj_free(v);
	return NULL;
}

static tj_value *parse_value(parser *ps, int depth)
{
	if (depth > TJ_MAX_DEPTH)
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
		tj_value *v = new_value(TJ_STRING);
		v->s = s.data;
		v->slen = s.len;
		return v;
	}
	case 't':
		if (!literal(ps, "true"))
			return NULL;
		tj_value *t = new_value(TJ_BOOL);
		t->b = true;
		return t;
	case 'f':
		return literal(ps, "false") ? new_value(TJ_BOOL) : NULL;
	case 'n':
		return literal(ps, "null") ? new_value(TJ_NULL) : NULL;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps);
		return NULL;
	}
}

tj_value *tj_parse(const char *text, size_t len)
{
	if (!text)
		return NULL;
	parser ps = {(const unsigned char *)text,
		     (const unsigned char *)text + len};
	tj_value *v = parse_value(&ps, 1);
	if (!v)
		return NULL;
	skip_ws(&ps);
	if (ps.p != ps.end) { /* trailing garbage */
		tj_free(v);
		return NULL;
	}
	return v;
}

tj_type tj_type_of(const tj_value *v)
{
	return v ? v->type : TJ_NULL;
}

const char *tj_type_name(tj_type t)
{
	switch (t) {
	case TJ_NULL: return "null";
	case TJ_BOOL: return "bool";
	case TJ_INT: return "integer";
	case TJ_NUMBER: return "number";
	case TJ_STRING: return "string";
	case TJ_ARRAY: return "array";
	case TJ_OBJECT: return "object";
	}
	return "?";
}

size_t tj_len(const tj_value *v)
{
	return v && (v->type == TJ_ARRAY || v->type == TJ_OBJECT) ? v->n : 0;
}

const tj_value *tj_at(const tj_value *v, size_t i)
{
	return i < tj_len(v) ? v->items[i] : NULL;
}

const char *tj_key_at(const tj_value *v, size_t i)
{
	return v && v->type == TJ_OBJECT && i < v->n ? v->keys[i] : NULL;
}

const tj_value *tj_get(const tj_value *obj, const char *key)
{
	if (!obj || obj->type != TJ_OBJECT)
		return NULL;
	size_t n = strlen(key);
	for (size_t k = 0; k < obj->n; k++)
		if (obj->klens[k] == n && memcmp(obj->keys[k], key, n) == 0)
			return obj->items[k];
	return NULL;
}

const char *tj_str(const tj_value *v)
{
	return v && v->type == TJ_STRING ? v->s : NULL;
}

size_t tj_str_len(const tj_value *v)
{
	return v && v->type == TJ_STRING ? v->slen : 0;
}

long long tj_int(const tj_value *v)
{
	return v && v->type == TJ_INT ? v->i : 0;
}

double tj_number(const tj_value *v)
{
	return v && (v->type == TJ_INT || v->type == TJ_NUMBER) ? v->d : 0.0;
}

bool tj_bool(const tj_value *v)
{
	return v && v->type == TJ_BOOL && v->b;
}
