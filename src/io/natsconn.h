/*
 * natsconn.h - opening a NATS connection the way every vox process wants it:
 * a client name, an error handler (libnats 3.4.1 has none by default),
 * reconnect forever, optional SendAsap, credentials and TLS from config.
 */
#ifndef VOX_NATSCONN_H
#define VOX_NATSCONN_H

#include "core/common.h"

#include <nats/nats.h>

typedef struct vox_nats_opts {
	const char *url;      /* comma-separated list allowed */
	const char *name;     /* client name shown by the server */
	const char *user;     /* optional user/password */
	const char *password;
	const char *creds;    /* optional .creds file (JWT + nkey seed) */
	const char *tls_ca;   /* optional CA bundle; enables TLS */
	const char *tls_cert; /* optional client certificate */
	const char *tls_key;
	/* the inbox prefix for replies and JetStream deliveries; NULL or ""
	 * derives it from user (vox_nats_inbox_prefix) */
	const char *inbox_prefix;
	bool send_asap;       /* flush every publish at once (request-reply) */
	int64_t timeout_ms;   /* connect timeout */
} vox_nats_opts;

/*
 * The options of a client that is configured like the actors, from the
 * VOX_NATS_URL, _USER, _PASSWORD, _CREDS, _TLS_CA, _TLS_CERT, _TLS_KEY and
 * _INBOX_PREFIX variables (unset or empty: absent; the URL defaults to
 * nats://127.0.0.1:4222), with SendAsap and a 5 s connect timeout. The
 * strings are borrowed from the environment.
 */
void vox_nats_opts_from_env(vox_nats_opts *o, const char *name);

/*
 * Connect once. On success *out is a connection the caller destroys with
 * natsConnection_Destroy (after draining it). Returns VOX_E_UNAVAILABLE when
 * no server answers, VOX_E_CONFIG for bad options; *err gets a reason.
 */
vox_status vox_nats_connect(natsConnection **out, const vox_nats_opts *o,
			    char *err, size_t errlen) VOX_MUST_CHECK;

/*
 * Whether the server nc reached runs JetStream: asks for the EVENTS
 * stream's information. VOX_E_UNAVAILABLE when nothing answers (a
 * server started without -js, or not the server meant: Debian's
 * nats-server listens on the default port without JetStream), with err
 * naming the server's URL; VOX_OK otherwise, including when the answer
 * is an error of another kind (the calls that follow report those).
 */
vox_status vox_nats_require_js(natsConnection *nc, char *err,
			       size_t errlen) VOX_MUST_CHECK;

/*
 * Give opts the server URLs of list: one URL, or several separated by
 * commas (blanks around them ignored), as VOX_NATS_URL allows. libnats's
 * natsOptions_SetURL takes a single URL only; a list goes to
 * natsOptions_SetServers. NATS_INVALID_ARG for an empty entry or more
 * than 32 URLs.
 */
natsStatus vox_nats_set_urls(natsOptions *opts, const char *list) VOX_MUST_CHECK;

/*
 * The inbox prefix of a client, so that the server can let each user
 * subscribe to its own replies and JetStream deliveries only
 * (deploy/nats/accounts.conf allows user U "_INBOX_U.>"):
 *   explicit, when not NULL or "" (VOX_NATS_INBOX_PREFIX: a credentials
 *     file names no user), else
 *   "_INBOX_<user>" when user is not NULL or "", else
 *   "_INBOX", libnats's default (a server without users).
 * Returns false, out unchanged, when the prefix cannot be one: empty
 * tokens, wildcards or blanks, a trailing '.', longer than 127 bytes, or
 * a derived one from a user name with a '.' (user "a" could then read
 * user "a.b"'s inbox "_INBOX_a.b.>").
 */
bool vox_nats_inbox_prefix(char *out, size_t outlen, const char *user,
			   const char *explicit_prefix) VOX_MUST_CHECK;

/* A new inbox subject under prefix: "<prefix>.<unique token>", for
 * replies collected by hand (several answers to one request). */
natsStatus vox_nats_new_inbox(char *out, size_t outlen, const char *prefix)
	VOX_MUST_CHECK;

/* Map a libnats status to a vox status (timeouts and I/O are transient). */
vox_status vox_nats_status(natsStatus s) VOX_MUST_CHECK;

#endif
