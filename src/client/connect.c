/*
 * connect.c - the public client's connection (vox/client.h): the VOX_NATS_*
 * variables read as the actors read them, through io/natsconn.c, so that a
 * bridge gets the same reconnects, TLS and per-user inbox prefix.
 */
#include "vox/client.h"

#include "core/common.h"
#include "io/natsconn.h"

vox_status vox_connect_env(natsConnection **out, const char *name, char *err,
			   size_t errlen)
{
	vox_nats_opts o;
	vox_nats_opts_from_env(&o, name);
	return vox_nats_connect(out, &o, err, errlen);
}
