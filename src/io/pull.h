/*
 * pull.h - pulling from a JetStream durable consumer with requests of our
 * own, on a plain subscription to a private inbox.
 *
 * Why not natsSubscription_FetchRequest: under load (e2e at 20k events/s
 * on two cores) libnats 3.4.1's fetch returned lists with more messages
 * than the array it had allocated for them; ASan showed the read past
 * its end, and without ASan vox-calls and vox-billing died with heap
 * corruption ("free(): corrupted unsorted chunks"). Its pulls share one
 * wildcard inbox, and what earlier pulls left queued there is counted
 * into the next; we did not pin down the exact interleaving, and took
 * the bookkeeping into our hands rather than guess around it.
 *
 * Here a fetch owns its array. Messages of earlier pulls still queued are
 * taken first (they are valid deliveries, ours to ack); a status (404,
 * 408, 409) ends the pull it answers and is ignored for any other.
 * Dispositions are published to the message's ack subject, so they do not
 * need libnats's JetStream state either.
 */
#ifndef VOX_PULL_H
#define VOX_PULL_H

#include "core/common.h"

#include <nats/nats.h>

typedef struct vox_pull vox_pull;

/* Subscribe to a fresh inbox under prefix (NULL or "": "_INBOX", as
 * libnats) for pulling from durable on stream. The consumer must exist
 * (it is only asked for messages). */
natsStatus vox_pull_open(vox_pull **out, natsConnection *nc,
			 const char *prefix, const char *stream,
			 const char *durable) VOX_MUST_CHECK;

/*
 * Up to max messages (and about max_bytes, never less than one message),
 * the server waiting up to wait_ms (at least 1) for them. Messages queued
 * from earlier pulls come first and are returned without asking the
 * server. NATS_OK with list->Count > 0; NATS_TIMEOUT when none came;
 * another status when the connection or the consumer is gone. The list is
 * the caller's (natsMsgList_Destroy).
 */
natsStatus vox_pull_fetch(vox_pull *p, natsMsgList *list, size_t max,
			  size_t max_bytes, int64_t wait_ms) VOX_MUST_CHECK;

/* The subject the server delivers to ("<inbox>.<n>" answers pull n). */
const char *vox_pull_inbox(const vox_pull *p);

/* Unsubscribe; messages still queued are given back (nak) so that they
 * are redelivered at once rather than after AckWait. NULL is ignored. */
void vox_pull_close(vox_pull *p);

typedef enum vox_ack_kind {
	VOX_ACK,      /* done */
	VOX_NAK,      /* redeliver after delay_ms */
	VOX_TERM,     /* never redeliver */
	VOX_PROGRESS, /* still working: AckWait starts again */
} vox_ack_kind;

/* Tell JetStream what became of m (a message of vox_pull_fetch). NATS_ERR
 * when m has no ack subject. */
natsStatus vox_pull_settle(natsConnection *nc, natsMsg *m, vox_ack_kind k,
			   int64_t delay_ms);

#endif
