/*
 * connect.c - the public client's connection (vox/client.h): the VOX_NATS_*
 * variables read as the actors read them, through io/natsconn.c, so that a
 * bridge gets the same reconnects, TLS and per-user inbox prefix.
 */
#include "vox/client.h"

#include "core/common.h"
#include "io/natsconn.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

vox_status vox_connect_env(natsConnection **out, const char *name, char *err,
			   size_t errlen)
{
	const char *url = env("VOX_NATS_URL");
	vox_nats_opts o = {
		.url = url ? url : "nats://127.0.0.1:4222",
		.name = name,
		.user = env("VOX_NATS_USER"),
		.password = env("VOX_NATS_PASSWORD"),
		.creds = env("VOX_NATS_CREDS"),
		.tls_ca = env("VOX_NATS_TLS_CA"),
		.tls_cert = env("VOX_NATS_TLS_CERT"),
		.tls_key = env("VOX_NATS_TLS_KEY"),
		.inbox_prefix = env("VOX_NATS_INBOX_PREFIX"),
		.send_asap = true,
		.timeout_ms = 5000,
	};
	return vox_nats_connect(out, &o, err, errlen);
}
