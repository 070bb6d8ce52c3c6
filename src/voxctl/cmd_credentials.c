/*
 * cmd_credentials.c - `voxctl credentials put|get|list|delete <org> ...`
 * over vox-vault's credentials.<verb>.<org> (subjects/credentials.md).
 * `get` never lets the secret cross NATS in the clear: it sends a one-time
 * X25519 public key as reply_key, opens the sealed reply locally, writes
 * the secret to stdout and wipes the secret key and the plaintext.
 */
#include "voxctl/voxctl.h"

#include <sodium.h>
#include <unistd.h>

#include "core/codec.h"

#define TIMEOUT_MS 5000

static const char *const providers[] = {
	"vapi",   "twilio",   "google_calendar", "resend",     "elevenlabs",
	"openai", "deepgram", "cartesia",        "outlook_calendar", "hubspot",
	"salesforce", "stripe", NULL};
static const char *const types[] = {"default", "inbound", "outbound", NULL};

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static bool one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

/* Whether p[0..n) is UTF-8 text without NULs. */
static bool is_text(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = vox_utf8_len(p + i, n - i);
		if (k == 0 || p[i] == 0)
			return false;
		i += k;
	}
	return true;
}

/* The parsed command line of every verb. */
typedef struct cred_args {
	const char *verb, *org, *provider, *type, *config, *file;
	char subject[128];
} cred_args;

static const char *const usage_line =
	"voxctl credentials put|get|list|delete <org> [<provider>] ...";

static int parse_args(int argc, char **argv, cred_args *a)
{
	static const struct option opts[] = {
		{"type", required_argument, NULL, 't'},
		{"config", required_argument, NULL, 'c'},
		{"file", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	int c;
	memset(a, 0, sizeof(*a));
	voxctl_getopt_reset();
	while ((c = voxctl_getopt("credentials", argc, argv, "f:", opts)) != -1) {
		if (c == 't')
			a->type = optarg;
		else if (c == 'c')
			a->config = optarg;
		else if (c == 'f')
			a->file = optarg;
		else
			return EXIT_USAGE;
	}
	const char **operands[] = {&a->verb, &a->org, &a->provider};
	for (size_t k = 0; optind < argc; k++, optind++) {
		if (k == VOX_NELEM(operands)) {
			voxctl_usage_err("credentials", "unexpected argument '%s'"
					 " (quote the --config value)", argv[optind]);
			return EXIT_USAGE;
		}
		*operands[k] = argv[optind];
	}
	if (!a->verb) {
		voxctl_err("credentials: a verb is needed: %s", usage_line);
		return EXIT_USAGE;
	}
	bool list = strcmp(a->verb, "list") == 0;
	bool put = strcmp(a->verb, "put") == 0;
	if (!list && !put && strcmp(a->verb, "get") != 0 &&
	    strcmp(a->verb, "delete") != 0) {
		voxctl_err("credentials: unknown verb '%s' (put, get, list or delete)",
			   a->verb);
		return EXIT_USAGE;
	}
	vox_uuid u;
	if (!a->org) {
		voxctl_err("credentials %s: the org id is needed: %s", a->verb, usage_line);
		return EXIT_USAGE;
	}
	if (!vox_uuid_parse(&u, a->org, strlen(a->org))) {
		voxctl_err("credentials %s: '%s' is not an org id (a UUID)", a->verb,
			   a->org);
		return EXIT_USAGE;
	}
	if (list) {
		if (a->provider || a->type || a->config || a->file) {
			voxctl_err("credentials list: takes only the org id");
			return EXIT_USAGE;
		}
	} else {
		if (!a->provider) {
			voxctl_err("credentials %s: the provider is needed: voxctl"
				   " credentials %s <org> <provider>", a->verb, a->verb);
			return EXIT_USAGE;
		}
		if (!one_of(a->provider, providers)) {
			voxctl_err("credentials %s: provider: '%s' is not one of vapi,"
				   " twilio, google_calendar, resend, elevenlabs, openai,"
				   " deepgram, cartesia, outlook_calendar, hubspot,"
				   " salesforce, stripe", a->verb, a->provider);
			return EXIT_USAGE;
		}
		if (a->type && !one_of(a->type, types)) {
			voxctl_err("credentials %s: --type: '%s' is not default, inbound"
				   " or outbound", a->verb, a->type);
			return EXIT_USAGE;
		}
	}
	if (put && !a->config == !a->file) {
		voxctl_err("credentials put: give the secret with --config '<text>'"
			   " or -f FILE (one of them)");
		return EXIT_USAGE;
	}
	if (!put && (a->config || a->file)) {
		voxctl_err("credentials %s: --config and -f are for put only", a->verb);
		return EXIT_USAGE;
	}
	snprintf(a->subject, sizeof(a->subject), "credentials.%s.%s", a->verb,
		 a->org);
	return EXIT_OK;
}

/* Request and print the reply (put, list, delete). */
static int send_print(const cred_args *a, const vox_buf *body)
{
	natsConnection *nc = NULL;
	int rc = voxctl_connect(&nc);
	if (rc != EXIT_OK)
		return rc;
	rc = voxctl_request_print(nc, a->subject, body->data, body->len, TIMEOUT_MS);
	natsConnection_Destroy(nc);
	return rc;
}

static int cmd_put(const cred_args *a)
{
	vox_buf secret, body;
	msgpack_packer pk;
	int rc = EXIT_OK;
	vox_buf_init(&secret);
	vox_buf_init(&body);
	if (a->file) {
		if (!voxctl_read_file(&secret, a->file))
			rc = EXIT_USAGE;
	} else {
		vox_buf_append(&secret, a->config, strlen(a->config));
	}
	if (rc == EXIT_OK && secret.len == 0) {
		voxctl_err("credentials put: the secret is empty");
		rc = EXIT_USAGE;
	}
	if (rc == EXIT_OK) {
		msgpack_packer_init(&pk, &body, vox_mp_buf_write);
		msgpack_pack_map(&pk, a->type ? 3 : 2);
		vox_mp_pack_cstr(&pk, "provider");
		vox_mp_pack_cstr(&pk, a->provider);
		if (a->type) {
			vox_mp_pack_cstr(&pk, "type");
			vox_mp_pack_cstr(&pk, a->type);
		}
		vox_mp_pack_cstr(&pk, "config");
		/* text stays text; anything else goes as bytes */
		if (is_text((const unsigned char *)secret.data, secret.len)) {
			pack_str(&pk, secret.data, secret.len);
		} else {
			msgpack_pack_bin(&pk, secret.len);
			msgpack_pack_bin_body(&pk, secret.data, secret.len);
		}
		rc = send_print(a, &body);
	}
	if (secret.data)
		sodium_memzero(secret.data, secret.len);
	if (body.data)
		sodium_memzero(body.data, body.len);
	vox_buf_release(&secret);
	vox_buf_release(&body);
	return rc;
}

static int cmd_list(const cred_args *a)
{
	vox_buf body;
	vox_buf_init(&body);
	vox_buf_putc(&body, (char)0x80); /* {} */
	int rc = send_print(a, &body);
	vox_buf_release(&body);
	return rc;
}

static int cmd_delete(const cred_args *a)
{
	vox_buf body;
	msgpack_packer pk;
	vox_buf_init(&body);
	msgpack_packer_init(&pk, &body, vox_mp_buf_write);
	msgpack_pack_map(&pk, a->type ? 2 : 1);
	vox_mp_pack_cstr(&pk, "provider");
	vox_mp_pack_cstr(&pk, a->provider);
	if (a->type) {
		vox_mp_pack_cstr(&pk, "type");
		vox_mp_pack_cstr(&pk, a->type);
	}
	int rc = send_print(a, &body);
	vox_buf_release(&body);
	return rc;
}

/* Write all of p to stdout without stdio's buffer (nothing to wipe). */
static bool write_all(const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* The "sealed" bin of a reply map, or NULL. */
static const msgpack_object *find_sealed(const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 6 &&
		    memcmp(kv->key.via.str.ptr, "sealed", 6) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_BIN)
			return &kv->val;
	}
	return NULL;
}

/* Open the sealed reply and print the secret; the exit code. */
static int open_and_print(const char *subject, natsMsg *m, const uint8_t *pk,
			  const uint8_t *sk)
{
	msgpack_unpacked u;
	size_t off = 0;
	int rc = EXIT_SERVER;
	const char *data = natsMsg_GetData(m);
	size_t len = (size_t)natsMsg_GetDataLength(m);
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS) {
		voxctl_err("%s: the reply is not msgpack", subject);
		goto out;
	}
	const msgpack_object *sealed = find_sealed(&u.data);
	if (!sealed || sealed->via.bin.size < crypto_box_SEALBYTES) {
		/* never accept a reply in the clear: we asked for a sealed one */
		voxctl_err("%s: the reply carries no sealed secret (is vox-vault too"
			   " old?)", subject);
		goto out;
	}
	size_t plen = sealed->via.bin.size - crypto_box_SEALBYTES;
	unsigned char *plain = sodium_malloc(plen + 1);
	if (!plain) {
		voxctl_err("%s: out of memory for the secret", subject);
		goto out;
	}
	if (crypto_box_seal_open(plain, (const unsigned char *)sealed->via.bin.ptr,
				 sealed->via.bin.size, pk, sk) != 0) {
		voxctl_err("%s: the sealed reply does not open with this request's key",
			   subject);
	} else if (is_text(plain, plen)) {
		bool ok = write_all(plain, plen);
		/* a newline for people, not added to what a pipe stores */
		if (ok && isatty(STDOUT_FILENO) && (plen == 0 || plain[plen - 1] != '\n'))
			ok = write_all((const unsigned char *)"\n", 1);
		rc = ok ? EXIT_OK : EXIT_SERVER;
		if (!ok)
			voxctl_err("stdout: write error");
	} else {
		/* bytes: base64, one line */
		size_t cap = sodium_base64_encoded_len(plen, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = sodium_malloc(cap + 1);
		if (b64) {
			sodium_bin2base64(b64, cap, plain, plen,
					  sodium_base64_VARIANT_ORIGINAL);
			size_t bl = strlen(b64);
			b64[bl] = '\n';
			rc = write_all((const unsigned char *)b64, bl + 1) ? EXIT_OK
									  : EXIT_SERVER;
			sodium_memzero(b64, cap + 1);
			sodium_free(b64);
		} else {
			voxctl_err("%s: out of memory for the secret", subject);
		}
	}
	sodium_memzero(plain, plen + 1);
	sodium_free(plain);
out:
	msgpack_unpacked_destroy(&u);
	return rc;
}

static int cmd_get(const cred_args *a)
{
	uint8_t pk[crypto_box_PUBLICKEYBYTES];
	uint8_t *sk = NULL;
	vox_buf body;
	msgpack_packer mp;
	natsConnection *nc = NULL;
	natsMsg *m = NULL;
	int code = 0;
	char text[256];
	if (sodium_init() < 0) {
		voxctl_err("credentials get: libsodium cannot start");
		return EXIT_SERVER;
	}
	sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
	if (!sk) {
		voxctl_err("credentials get: out of memory for the key pair");
		return EXIT_SERVER;
	}
	crypto_box_keypair(pk, sk);
	vox_buf_init(&body);
	msgpack_packer_init(&mp, &body, vox_mp_buf_write);
	msgpack_pack_map(&mp, a->type ? 3 : 2);
	vox_mp_pack_cstr(&mp, "provider");
	vox_mp_pack_cstr(&mp, a->provider);
	if (a->type) {
		vox_mp_pack_cstr(&mp, "type");
		vox_mp_pack_cstr(&mp, a->type);
	}
	vox_mp_pack_cstr(&mp, "reply_key");
	msgpack_pack_bin(&mp, sizeof(pk));
	msgpack_pack_bin_body(&mp, pk, sizeof(pk));

	int rc = voxctl_connect(&nc);
	if (rc == EXIT_OK)
		rc = voxctl_request(nc, a->subject, body.data, body.len, TIMEOUT_MS, &m,
				    &code, text, sizeof(text));
	if (rc == EXIT_SERVER) {
		voxctl_err("%s: %d %s", a->subject, code, text);
		rc = code == 400 || code == 413 ? EXIT_USAGE : EXIT_SERVER;
	} else if (rc == EXIT_OK) {
		rc = open_and_print(a->subject, m, pk, sk);
	}
	natsMsg_Destroy(m);
	natsConnection_Destroy(nc);
	sodium_memzero(sk, crypto_box_SECRETKEYBYTES); /* the one-time key */
	sodium_free(sk);
	vox_buf_release(&body);
	return rc;
}

int voxctl_cmd_credentials(int argc, char **argv)
{
	cred_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc != EXIT_OK)
		return rc;
	if (strcmp(a.verb, "put") == 0)
		return cmd_put(&a);
	if (strcmp(a.verb, "get") == 0)
		return cmd_get(&a);
	if (strcmp(a.verb, "list") == 0)
		return cmd_list(&a);
	return cmd_delete(&a);
}
