/*
 * vox/event.h - the messages of the vox wire contract as plain C values:
 * the events bridges publish (call.started, call.ended, payment.succeeded,
 * payment.refunded, lead.scored) and the alerts vox emits (alert.hot_lead,
 * alert.low_balance, alert.debt_limit), with strict decoding and encoding of
 * their MessagePack form. subjects/ documents every field.
 *
 * Ownership: a decoded event's strings (vox_str) are views into the bytes
 * passed to vox_event_decode; they are valid while those bytes are and are
 * NOT NUL-terminated. UUIDs are copied, normalised to lowercase.
 *
 * Thread safety: every function here is reentrant; nothing is global.
 */
#ifndef VOX_EVENT_H
#define VOX_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vox/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest message vox accepts (NATS's default max_payload). */
#define VOX_MAX_MESSAGE (1024 * 1024)

typedef enum vox_event_kind {
	VOX_CALL_STARTED = 0,
	VOX_CALL_ENDED,
	VOX_PAYMENT_SUCCEEDED,
	VOX_PAYMENT_REFUNDED,
	VOX_LEAD_SCORED,
	VOX_ALERT_HOT_LEAD,
	VOX_ALERT_LOW_BALANCE,
	VOX_ALERT_DEBT_LIMIT,
	VOX_EVENT_KIND_COUNT
} vox_event_kind;

/* A string view: ptr == NULL means the optional field was absent. */
typedef struct vox_str {
	const char *ptr;
	size_t len;
} vox_str;

/* Canonical lowercase UUID text; s[0] == '\0' means absent. */
typedef struct vox_uuid {
	char s[37];
} vox_uuid;

/* A point in time with nanoseconds; set == false means absent. */
typedef struct vox_time {
	int64_t sec;
	int32_t nsec;
	bool set;
} vox_time;

/* Enumerations: 0 is "absent" for optional fields. */
typedef enum vox_direction { VOX_DIR_NONE = 0, VOX_DIR_INBOUND, VOX_DIR_OUTBOUND } vox_direction;
typedef enum vox_call_status { VOX_CALL_STATUS_NONE = 0, VOX_CALL_COMPLETED, VOX_CALL_FAILED } vox_call_status;
typedef enum vox_sentiment { VOX_SENTIMENT_NONE = 0, VOX_SENTIMENT_POSITIVE, VOX_SENTIMENT_NEUTRAL, VOX_SENTIMENT_NEGATIVE } vox_sentiment;
typedef enum vox_urgency { VOX_URGENCY_NONE = 0, VOX_URGENCY_LOW, VOX_URGENCY_MEDIUM, VOX_URGENCY_HIGH, VOX_URGENCY_CRITICAL } vox_urgency;
typedef enum vox_lead_status { VOX_LEAD_NONE = 0, VOX_LEAD_HOT, VOX_LEAD_WARM, VOX_LEAD_COLD, VOX_LEAD_CONTACTED } vox_lead_status;

typedef struct vox_call_started {
	vox_str event_id;
	vox_uuid org_id;
	vox_uuid call_id;
	vox_str vapi_call_id;   /* optional */
	vox_direction direction;
	vox_str from_number;    /* E.164 */
	vox_str to_number;      /* E.164 */
	vox_str caller_name;    /* optional */
	vox_uuid contact_id;    /* optional */
	vox_time started_at;
} vox_call_started;

typedef struct vox_call_ended {
	vox_str event_id;
	vox_uuid org_id;
	vox_uuid call_id;
	vox_time ended_at;
	int64_t duration_seconds; /* 0..86400 */
	vox_call_status status;
	/* optional: let a call.ended that comes first create the call */
	vox_direction direction;
	vox_str from_number;
	vox_str to_number;
	vox_time started_at;
	/* optional content */
	vox_str transcript;
	vox_str summary;
	vox_str recording_url;
	vox_str sentiment_summary;
	vox_sentiment sentiment_label;
	bool has_sentiment_score;
	double sentiment_score; /* 0.0..1.0 */
	vox_urgency sentiment_urgency;
} vox_call_ended;

typedef struct vox_payment_succeeded {
	vox_str event_id;
	vox_uuid org_id;
	vox_str stripe_payment_intent_id;
	int64_t amount_pence; /* 1..100,000,000 */
	vox_str description;  /* optional */
	vox_time occurred_at;
} vox_payment_succeeded;

typedef struct vox_payment_refunded {
	vox_str event_id;
	vox_uuid org_id;
	vox_str stripe_refund_id;
	vox_str stripe_payment_intent_id;
	int64_t amount_pence; /* 1..100,000,000 */
	vox_time occurred_at;
} vox_payment_refunded;

typedef struct vox_lead_scored {
	vox_str event_id;
	vox_uuid org_id;
	vox_uuid contact_id;  /* contact_id or phone: at least one */
	vox_str phone;
	vox_uuid call_id;     /* optional */
	int64_t lead_score;   /* 0..100 */
	vox_lead_status lead_status; /* optional: derived from the score */
	vox_str lead_name;
	vox_str service_interest;
	vox_str summary;
	vox_time scored_at;
} vox_lead_scored;

typedef struct vox_alert_hot_lead {
	vox_uuid alert_id;
	vox_uuid org_id;
	vox_uuid contact_id;
	vox_uuid call_id;     /* absent (nil) when the lead has no call */
	vox_str lead_name;
	vox_str lead_phone;
	int64_t lead_score;
	vox_urgency urgency_level; /* high or medium */
	vox_str service_interest;
	vox_str summary;
	vox_time created_at;
} vox_alert_hot_lead;

/* alert.low_balance and alert.debt_limit share one shape; `amount_pence`
 * is threshold_pence for low_balance and shortfall_pence for debt_limit. */
typedef struct vox_alert_wallet {
	vox_uuid alert_id;
	vox_uuid org_id;
	int64_t balance_pence;
	int64_t debt_limit_pence;
	int64_t amount_pence;
	vox_uuid call_id;     /* optional */
	vox_time created_at;
} vox_alert_wallet;

typedef struct vox_event {
	vox_event_kind kind;
	union {
		vox_call_started call_started;
		vox_call_ended call_ended;
		vox_payment_succeeded payment_succeeded;
		vox_payment_refunded payment_refunded;
		vox_lead_scored lead_scored;
		vox_alert_hot_lead hot_lead;
		vox_alert_wallet wallet; /* low_balance and debt_limit */
	} u;
} vox_event;


/*
 * Decode and validate data (len bytes) as a message of the given kind.
 * On VOX_OK *out is filled (views into data). On failure *out is left
 * untouched and *err (if not NULL) says why. Never allocates, never reads
 * outside [data, data + len), never recurses.
 */
vox_status vox_event_decode(vox_event *out, vox_event_kind kind,
			    const void *data, size_t len,
			    vox_error *err) VOX_MUST_CHECK;

/*
 * The Vox-Schema header of a message: NULL (absent) and "1" are the
 * payload version this library reads. Any other value is refused with
 * VOX_E_INVALID, reason "unknown_schema", field "Vox-Schema": a version
 * 2 payload is another contract, never read as version 1. The message
 * is dead-lettered with that reason, so that it can be replayed once an
 * actor that reads it is deployed.
 */
#define VOX_SCHEMA_VERSION "1"
vox_status vox_schema_version_check(vox_error *err,
				    const char *header) VOX_MUST_CHECK;

/*
 * Decode a message received on subject: the kind comes from the subject's
 * leading tokens and the payload's org_id must equal the subject's last
 * token (VOX_E_ORG_MISMATCH otherwise). VOX_E_INVALID for an unknown
 * subject.
 */
vox_status vox_event_decode_subject(vox_event *out, const char *subject,
				    const void *data, size_t len,
				    vox_error *err) VOX_MUST_CHECK;

/*
 * Encode ev as MessagePack. On VOX_OK *out is a malloc'd buffer of *len
 * bytes that the caller frees with free(). The event is validated first
 * with the decoder's rules (VOX_E_INVALID and *err filled if it breaks
 * one), so vox never sends what it would refuse.
 */
vox_status vox_event_encode(unsigned char **out, size_t *len,
			    const vox_event *ev, vox_error *err) VOX_MUST_CHECK;

/* The event as one line of canonical JSON (fields in contract order,
 * timestamps in RFC 3339 with nanoseconds). malloc'd; caller frees. */
char *vox_event_to_json(const vox_event *ev);

/* "call.started", "alert.hot_lead", ...; NULL for a bad kind. */
const char *vox_event_kind_name(vox_event_kind kind);

/* The org an event belongs to (every kind has one). */
const vox_uuid *vox_event_org(const vox_event *ev);

/* The event_id of an inbound event, or the alert_id text of an alert: the
 * value used as Nats-Msg-Id. */
vox_str vox_event_msg_id(const vox_event *ev);

#ifdef __cplusplus
}
#endif

#endif
