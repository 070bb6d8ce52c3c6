/*
 * actor.h - the process shell every vox actor runs in: configuration from
 * the environment (--help lists it), logging, signal handling, the NATS
 * connection and the ADR-32 service announcement, and a clean drain on
 * SIGTERM/SIGINT. SIGHUP calls the actor's reload hook (logged and
 * otherwise ignored without one). An actor supplies its name, its
 * endpoints and (from the runtime) its consume loop; this file owns the
 * lifecycle around them.
 *
 * Two NATS connections: one for consuming (batches, acks, publishes) and
 * one with SendAsap for the services protocol and endpoints, so a request
 * is never queued behind a batch of acks.
 */
#ifndef VOX_ACTOR_H
#define VOX_ACTOR_H

#include "core/config.h"
#include "io/runtime.h"
#include "io/service.h"

#include <nats/nats.h>

/* Configuration every actor reads. */
typedef struct vox_actor_config {
	const char *nats_url;
	const char *nats_user;
	const char *nats_password;
	const char *nats_creds;
	const char *nats_tls_ca;
	const char *nats_tls_cert;
	const char *nats_tls_key;
	const char *nats_inbox_prefix;
	const char *pg_dsn;
	const char *log_level;
	const char *log_format;
	const char *http_addr;
} vox_actor_config;

typedef struct vox_actor vox_actor;

typedef struct vox_actor_def {
	const char *name;        /* service name, e.g. "vox-billing" */
	const char *description; /* ADR-32 INFO description */
	/* Consuming actors: their durable consumers and the handler the
	 * runtime applies batches with. ninputs == 0 for request-only actors. */
	const vox_input *inputs;
	size_t ninputs;
	vox_handler handler;
	/* The actor's own VOX_* variables, parsed into *cfg with the shell's
	 * (so --help and the all-at-once error report include them). */
	const vox_cfg_var *vars;
	size_t nvars;
	void *cfg;
	/* Called once connected, before the service starts: add endpoints.
	 * May be NULL. A non-OK status stops the process with exit 1. */
	vox_status (*setup)(vox_actor *a, void *ctx);
	/* Called after SIGTERM/SIGINT, before the connection drains. */
	void (*teardown)(vox_actor *a, void *ctx);
	/* Called on SIGHUP, in the main thread, once setup has run: reread
	 * what can change without a restart. Endpoints keep running while it
	 * does, so it must swap state under the actor's own lock. It logs its
	 * outcome. NULL: SIGHUP is logged and otherwise ignored. */
	void (*reload)(vox_actor *a, void *ctx);
	/* Appends the actor's own $SRV.PING/INFO/STATS metadata members
	 * ("k":"v",... without braces; values are strings), after the
	 * runtime's. Called on the $SRV delivery thread, concurrently with
	 * endpoints and reload; only once setup has succeeded. May be NULL. */
	void (*metadata)(vox_buf *members, void *ctx);
	void *ctx;
} vox_actor_def;

/* Run the actor until a signal arrives; returns the process exit code:
 * 0 clean stop, 1 runtime failure, 2 bad configuration or usage. */
int vox_actor_main(const vox_actor_def *def, int argc, char **argv);

/* Accessors for setup/teardown: borrowed, valid while the actor runs. */
const vox_actor_config *vox_actor_cfg(const vox_actor *a);
const vox_runtime_config *vox_actor_runtime_cfg(const vox_actor *a);
/* The connection endpoints reply on (SendAsap). */
natsConnection *vox_actor_nats(const vox_actor *a);
vox_service *vox_actor_service(const vox_actor *a);

/* The table of vox_actor_config variables (for --help and tests). */
extern const vox_cfg_var vox_actor_vars[];
extern const size_t vox_actor_nvars;

#endif
