/*
 * natsconn.c - NATS connection set-up shared by actors, voxctl, the public
 * client and tests: one place that sets the error handler, reconnects and
 * the inbox prefix every NATS user of deploy/nats/accounts.conf needs.
 */
#include "io/natsconn.h"

#include "io/log.h"
#include "vox/subjects.h"

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus s,
		     void *closure)
{
	VOX_UNUSED(nc);
	VOX_UNUSED(closure);
	vox_warn("msg=\"nats async error\" error=\"%s\" sub=%" PRId64,
		 natsStatus_GetText(s),
		 sub ? natsSubscription_GetID(sub) : (int64_t)0);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	VOX_UNUSED(closure);
	if (natsConnection_IsClosed(nc))
		return; /* our own close, not an outage */
	vox_warn("msg=\"nats disconnected\"");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	char url[256] = "";
	VOX_UNUSED(closure);
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	vox_info("msg=\"nats reconnected\" url=%s", url);
}

vox_status vox_nats_status(natsStatus s)
{
	switch (s) {
	case NATS_OK:
		return VOX_OK;
	case NATS_TIMEOUT:
		return VOX_E_TIMEOUT;
	case NATS_NO_SERVER:
	case NATS_CONNECTION_CLOSED:
	case NATS_CONNECTION_DISCONNECTED:
	case NATS_IO_ERROR:
	case NATS_STALE_CONNECTION:
	case NATS_NO_RESPONDERS:
	case NATS_SLOW_CONSUMER:
	case NATS_DRAINING:
		return VOX_E_UNAVAILABLE;
	case NATS_NOT_FOUND:
		return VOX_E_NOT_FOUND;
	case NATS_NOT_PERMITTED:
	case NATS_CONNECTION_AUTH_FAILED:
		return VOX_E_FORBIDDEN;
	case NATS_INVALID_ARG:
	case NATS_INVALID_SUBJECT:
		return VOX_E_INVALID;
	case NATS_MAX_PAYLOAD:
		return VOX_E_TOO_LARGE;
	default:
		return VOX_E_INTERNAL;
	}
}

natsStatus vox_nats_set_urls(natsOptions *opts, const char *list)
{
	enum { MAX_URLS = 32 };
	const char *urls[MAX_URLS];
	int n = 0;
	natsStatus s = NATS_OK;
	if (!list || !strchr(list, ','))
		return natsOptions_SetURL(opts, list);
	char *copy = vox_strndup(list, strlen(list));
	for (char *p = copy; s == NATS_OK;) {
		char *end = strchr(p, ',');
		if (end)
			*end = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		size_t len = strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			p[--len] = '\0';
		if (len == 0 || n == MAX_URLS)
			s = NATS_INVALID_ARG;
		else
			urls[n++] = p;
		if (!end)
			break;
		p = end + 1;
	}
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, urls, n);
	free(copy);
	return s;
}

/* A subject prefix: tokens of printable characters without wildcards,
 * no empty token. */
static bool valid_prefix(const char *p)
{
	size_t len = strlen(p);
	if (len == 0 || len > 127 || p[0] == '.' || p[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch <= ' ' || ch >= 0x7f || ch == '*' || ch == '>' ||
		    (ch == '.' && p[i + 1] == '.'))
			return false;
	}
	return true;
}

bool vox_nats_inbox_prefix(char *out, size_t outlen, const char *user,
			   const char *explicit_prefix)
{
	char p[160];
	if (explicit_prefix && *explicit_prefix) {
		snprintf(p, sizeof(p), "%s", explicit_prefix);
		if (strlen(explicit_prefix) >= sizeof(p))
			return false;
	} else if (user && *user) {
		if (strchr(user, '.') || strlen(user) > 120)
			return false;
		snprintf(p, sizeof(p), "_INBOX_%s", user);
	} else {
		snprintf(p, sizeof(p), "_INBOX");
	}
	if (!valid_prefix(p) || strlen(p) >= outlen)
		return false;
	memcpy(out, p, strlen(p) + 1);
	return true;
}

natsStatus vox_nats_new_inbox(char *out, size_t outlen, const char *prefix)
{
	natsInbox *ib = NULL;
	/* libnats makes "_INBOX.<nuid>"; keep the unique token */
	natsStatus s = natsInbox_Create(&ib);
	if (s != NATS_OK)
		return s;
	const char *dot = strchr((const char *)ib, '.');
	int n = snprintf(out, outlen, "%s.%s", prefix,
			 dot ? dot + 1 : (const char *)ib);
	natsInbox_Destroy(ib);
	return n > 0 && (size_t)n < outlen ? NATS_OK : NATS_INVALID_ARG;
}

static const char *env_or_null(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

void vox_nats_opts_from_env(vox_nats_opts *o, const char *name)
{
	const char *url = env_or_null("VOX_NATS_URL");
	*o = (vox_nats_opts){
		.url = url ? url : "nats://127.0.0.1:4222",
		.name = name,
		.user = env_or_null("VOX_NATS_USER"),
		.password = env_or_null("VOX_NATS_PASSWORD"),
		.creds = env_or_null("VOX_NATS_CREDS"),
		.tls_ca = env_or_null("VOX_NATS_TLS_CA"),
		.tls_cert = env_or_null("VOX_NATS_TLS_CERT"),
		.tls_key = env_or_null("VOX_NATS_TLS_KEY"),
		.inbox_prefix = env_or_null("VOX_NATS_INBOX_PREFIX"),
		.send_asap = true,
		.timeout_ms = 5000,
	};
}

vox_status vox_nats_require_js(natsConnection *nc, char *err, size_t errlen)
{
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	jsOptions jo;
	char url[256] = "?";
	jsOptions_Init(&jo);
	jo.Wait = 2000;
	natsStatus s = natsConnection_JetStream(&js, nc, &jo);
	if (s == NATS_OK)
		/* the one JetStream request every user of vox may make (an
		 * actor's NATS permissions allow no $JS.API.INFO); a missing
		 * stream is checked, and waited for, later */
		s = js_GetStreamInfo(&si, js, VOX_STREAM_EVENTS, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	if (s != NATS_NO_RESPONDERS)
		return VOX_OK;
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	snprintf(err, errlen,
		 "the NATS server at %s has no JetStream: start it with -js"
		 " (or jetstream {} in its config), or point VOX_NATS_URL at the"
		 " server vox uses", url);
	return VOX_E_UNAVAILABLE;
}

vox_status vox_nats_connect(natsConnection **out, const vox_nats_opts *o,
			    char *err, size_t errlen)
{
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	natsStatus s;
	vox_status rc = VOX_E_CONFIG;
	char inbox[128];

	if (!vox_nats_inbox_prefix(inbox, sizeof(inbox), o->user,
				   o->inbox_prefix)) {
		snprintf(err, errlen,
			 "nats options: no valid inbox prefix for user '%s'"
			 " (set VOX_NATS_INBOX_PREFIX)", o->user ? o->user : "");
		return VOX_E_CONFIG;
	}
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, NULL, 0);
	if (s == NATS_OK)
		s = vox_nats_set_urls(opts, o->url);
	if (s == NATS_OK && o->name)
		s = natsOptions_SetName(opts, o->name);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(opts, on_error, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(opts, on_disconnected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(opts, on_reconnected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, 250);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(opts, 64 * 1024 * 1024);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts, o->timeout_ms > 0 ? o->timeout_ms : 2000);
	/* replies and JetStream deliveries under this user's own prefix: the
	 * server lets nobody else subscribe there */
	if (s == NATS_OK)
		s = natsOptions_SetCustomInboxPrefix(opts, inbox);
	if (s == NATS_OK && o->send_asap)
		s = natsOptions_SetSendAsap(opts, true);
	if (s == NATS_OK && o->user && *o->user)
		s = natsOptions_SetUserInfo(opts, o->user, o->password);
	if (s == NATS_OK && o->creds && *o->creds)
		s = natsOptions_SetUserCredentialsFromFiles(opts, o->creds, NULL);
	if (s == NATS_OK && o->tls_ca && *o->tls_ca) {
		s = natsOptions_SetSecure(opts, true);
		if (s == NATS_OK)
			s = natsOptions_LoadCATrustedCertificates(opts, o->tls_ca);
		if (s == NATS_OK && o->tls_cert && *o->tls_cert)
			s = natsOptions_LoadCertificatesChain(opts, o->tls_cert,
							      o->tls_key);
	}
	if (s != NATS_OK) {
		snprintf(err, errlen, "nats options: %s", natsStatus_GetText(s));
		goto out;
	}
	s = natsConnection_Connect(&nc, opts);
	if (s != NATS_OK) {
		rc = vox_nats_status(s);
		if (rc == VOX_E_INTERNAL)
			rc = VOX_E_UNAVAILABLE;
		snprintf(err, errlen, "nats connect: %s", natsStatus_GetText(s));
		goto out;
	}
	*out = nc;
	nc = NULL;
	rc = VOX_OK;
out:
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	return rc;
}
