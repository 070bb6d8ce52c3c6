// Package vox is vox's contract for Go (subjects/ in the vox tree): typed
// events and alerts, publishing to JetStream, a helper per request, sealed
// credentials, alerts from a durable consumer, and error replies as
// *Error with the code, the stable reason and the field.
//
// Events are msgpack maps published on <kind>.<org_id> with Nats-Msg-Id =
// event_id and Vox-Schema: 1; time.Time values travel as msgpack
// timestamps (ext -1), to the nanosecond.
package vox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/crypto/nacl/box"
)

// SchemaVersion is the payload version this package reads and writes.
const SchemaVersion = "1"

// Event is what PublishEvent takes: one of the event types below.
type Event interface {
	Kind() string  // "call.started", ...
	Org() string   // its org_id: the subject's last token
	MsgID() string // its event_id: the Nats-Msg-Id
}

type CallStarted struct {
	EventID    string    `msgpack:"event_id"`
	OrgID      string    `msgpack:"org_id"`
	CallID     string    `msgpack:"call_id"`
	VapiCallID string    `msgpack:"vapi_call_id,omitempty"`
	Direction  string    `msgpack:"direction"`
	FromNumber string    `msgpack:"from_number"`
	ToNumber   string    `msgpack:"to_number"`
	CallerName string    `msgpack:"caller_name,omitempty"`
	ContactID  string    `msgpack:"contact_id,omitempty"`
	StartedAt  time.Time `msgpack:"started_at"`
}

type CallEnded struct {
	EventID          string     `msgpack:"event_id"`
	OrgID            string     `msgpack:"org_id"`
	CallID           string     `msgpack:"call_id"`
	EndedAt          time.Time  `msgpack:"ended_at"`
	DurationSeconds  int64      `msgpack:"duration_seconds"`
	Status           string     `msgpack:"status"`
	Direction        string     `msgpack:"direction,omitempty"`
	FromNumber       string     `msgpack:"from_number,omitempty"`
	ToNumber         string     `msgpack:"to_number,omitempty"`
	StartedAt        *time.Time `msgpack:"started_at,omitempty"`
	Transcript       string     `msgpack:"transcript,omitempty"`
	Summary          string     `msgpack:"summary,omitempty"`
	RecordingURL     string     `msgpack:"recording_url,omitempty"`
	SentimentSummary string     `msgpack:"sentiment_summary,omitempty"`
	SentimentLabel   string     `msgpack:"sentiment_label,omitempty"`
	SentimentScore   *float64   `msgpack:"sentiment_score,omitempty"`
	SentimentUrgency string     `msgpack:"sentiment_urgency,omitempty"`
}

type PaymentSucceeded struct {
	EventID               string    `msgpack:"event_id"`
	OrgID                 string    `msgpack:"org_id"`
	StripePaymentIntentID string    `msgpack:"stripe_payment_intent_id"`
	AmountPence           int64     `msgpack:"amount_pence"`
	Description           string    `msgpack:"description,omitempty"`
	OccurredAt            time.Time `msgpack:"occurred_at"`
}

type PaymentRefunded struct {
	EventID               string    `msgpack:"event_id"`
	OrgID                 string    `msgpack:"org_id"`
	StripeRefundID        string    `msgpack:"stripe_refund_id"`
	StripePaymentIntentID string    `msgpack:"stripe_payment_intent_id"`
	AmountPence           int64     `msgpack:"amount_pence"`
	OccurredAt            time.Time `msgpack:"occurred_at"`
}

type LeadScored struct {
	EventID         string    `msgpack:"event_id"`
	OrgID           string    `msgpack:"org_id"`
	ContactID       string    `msgpack:"contact_id,omitempty"`
	Phone           string    `msgpack:"phone,omitempty"`
	CallID          string    `msgpack:"call_id,omitempty"`
	LeadScore       int64     `msgpack:"lead_score"`
	LeadStatus      string    `msgpack:"lead_status,omitempty"`
	LeadName        string    `msgpack:"lead_name,omitempty"`
	ServiceInterest string    `msgpack:"service_interest,omitempty"`
	Summary         string    `msgpack:"summary,omitempty"`
	ScoredAt        time.Time `msgpack:"scored_at"`
}

func (e *CallStarted) Kind() string      { return "call.started" }
func (e *CallStarted) Org() string       { return e.OrgID }
func (e *CallStarted) MsgID() string     { return e.EventID }
func (e *CallEnded) Kind() string        { return "call.ended" }
func (e *CallEnded) Org() string         { return e.OrgID }
func (e *CallEnded) MsgID() string       { return e.EventID }
func (e *PaymentSucceeded) Kind() string { return "payment.succeeded" }
func (e *PaymentSucceeded) Org() string  { return e.OrgID }
func (e *PaymentSucceeded) MsgID() string {
	return e.EventID
}
func (e *PaymentRefunded) Kind() string  { return "payment.refunded" }
func (e *PaymentRefunded) Org() string   { return e.OrgID }
func (e *PaymentRefunded) MsgID() string { return e.EventID }
func (e *LeadScored) Kind() string       { return "lead.scored" }
func (e *LeadScored) Org() string        { return e.OrgID }
func (e *LeadScored) MsgID() string      { return e.EventID }

// HotLeadAlert is alert.hot_lead.<org>.
type HotLeadAlert struct {
	AlertID         string    `msgpack:"alert_id"`
	OrgID           string    `msgpack:"org_id"`
	ContactID       string    `msgpack:"contact_id"`
	CallID          string    `msgpack:"call_id,omitempty"`
	LeadName        string    `msgpack:"lead_name,omitempty"`
	LeadPhone       string    `msgpack:"lead_phone,omitempty"`
	LeadScore       int64     `msgpack:"lead_score"`
	UrgencyLevel    string    `msgpack:"urgency_level"`
	ServiceInterest string    `msgpack:"service_interest,omitempty"`
	Summary         string    `msgpack:"summary,omitempty"`
	CreatedAt       time.Time `msgpack:"created_at"`
}

// WalletAlert is alert.low_balance.<org> (ThresholdPence) and
// alert.debt_limit.<org> (ShortfallPence).
type WalletAlert struct {
	AlertID        string    `msgpack:"alert_id"`
	OrgID          string    `msgpack:"org_id"`
	BalancePence   int64     `msgpack:"balance_pence"`
	DebtLimitPence int64     `msgpack:"debt_limit_pence"`
	ThresholdPence int64     `msgpack:"threshold_pence,omitempty"`
	ShortfallPence int64     `msgpack:"shortfall_pence,omitempty"`
	CallID         string    `msgpack:"call_id,omitempty"`
	CreatedAt      time.Time `msgpack:"created_at"`
}

// Alert is one message of the ALERTS stream; HotLead or Wallet is set by
// its kind (neither for a kind this package does not know).
type Alert struct {
	Kind    string // "alert.hot_lead", ...
	Subject string
	HotLead *HotLeadAlert
	Wallet  *WalletAlert
}

// Error is an error reply: the services protocol's code and text, vox's
// stable reason (Vox-Error-Reason) and field (Vox-Error-Field).
type Error struct {
	Subject string
	Code    int
	Reason  string
	Field   string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %d %s", e.Subject, e.Code, e.Message) }

// PublishEvent stores ev in JetStream (Nats-Msg-Id = event_id,
// Vox-Schema: 1) and returns the ack: Duplicate when JetStream had it.
func PublishEvent(js nats.JetStreamContext, ev Event) (*nats.PubAck, error) {
	if ev.Org() == "" || ev.MsgID() == "" {
		return nil, errors.New("vox: org_id and event_id are required")
	}
	data, err := msgpack.Marshal(ev)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(ev.Kind() + "." + ev.Org())
	m.Data = data
	m.Header.Set("Vox-Schema", SchemaVersion)
	return js.PublishMsg(m, nats.MsgId(ev.MsgID()))
}

// Request sends body (a map or struct, msgpack-encoded; nil: {}) and
// decodes the reply into out. An error reply is an *Error.
func Request(nc *nats.Conn, subject string, body any, out any, timeout time.Duration) error {
	if body == nil {
		body = map[string]any{}
	}
	data, err := msgpack.Marshal(body)
	if err != nil {
		return err
	}
	reply, err := nc.Request(subject, data, timeout)
	if err != nil {
		return err
	}
	if e := ErrorFromHeader(subject, reply.Header); e != nil {
		return e
	}
	if out == nil {
		return nil
	}
	return msgpack.Unmarshal(reply.Data, out)
}

// ErrorFromHeader is the error a reply's headers carry, or nil for a
// success (no Nats-Service-Error-Code).
func ErrorFromHeader(subject string, h nats.Header) *Error {
	c := h.Get("Nats-Service-Error-Code")
	if c == "" {
		return nil
	}
	code, _ := strconv.Atoi(c)
	return &Error{Subject: subject, Code: code, Reason: h.Get("Vox-Error-Reason"),
		Field: h.Get("Vox-Error-Field"), Message: h.Get("Nats-Service-Error")}
}

// Connect opens a NATS connection and its JetStream context to
// VOX_NATS_URL (default nats://127.0.0.1:4222), as vox's own programs do.
func Connect(name string) (*nats.Conn, nats.JetStreamContext, error) {
	url := os.Getenv("VOX_NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Name(name))
	if err != nil {
		return nil, nil, err
	}
	js, err := nc.JetStream()
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Timeout is the requests' default.
var Timeout = 5 * time.Second

type Wallet struct {
	BalancePence     int64 `msgpack:"balance_pence"`
	DebtLimitPence   int64 `msgpack:"debt_limit_pence"`
	AvailablePence   int64 `msgpack:"available_pence"`
	UnbilledPence    int64 `msgpack:"unbilled_pence"`
	LowBalancePence  int64 `msgpack:"low_balance_pence"`
	RatePerMinute    int64 `msgpack:"rate_per_minute"`
	MinutesRemaining int64 `msgpack:"minutes_remaining"`
	InDebt           bool  `msgpack:"in_debt"`
	HeldPence        int64 `msgpack:"held_pence"` // active holds of calls in progress
}

// Page is a list reply: Next is the cursor of the next page ("" at the end).
type Page struct {
	Items []map[string]any `msgpack:"items"`
	Next  string           `msgpack:"next"`
}

// CallsQuery is query.calls' body; zero values are left out.
type CallsQuery struct {
	Limit     int        `msgpack:"limit,omitempty"`
	Before    string     `msgpack:"before,omitempty"`
	Status    string     `msgpack:"status,omitempty"`
	Direction string     `msgpack:"direction,omitempty"`
	Since     *time.Time `msgpack:"since,omitempty"`
	Until     *time.Time `msgpack:"until,omitempty"`
}

func GetWallet(nc *nats.Conn, org string) (*Wallet, error) {
	var w Wallet
	return &w, Request(nc, "query.wallet."+org, nil, &w, Timeout)
}

func Calls(nc *nats.Conn, org string, q CallsQuery) (*Page, error) {
	var p Page
	return &p, Request(nc, "query.calls."+org, q, &p, Timeout)
}

func Call(nc *nats.Conn, org, callID string) (map[string]any, error) {
	var c map[string]any
	return c, Request(nc, "query.call."+org, map[string]any{"call_id": callID}, &c, Timeout)
}

func HotLeads(nc *nats.Conn, org string, limit int) (*Page, error) {
	var p Page
	body := map[string]any{}
	if limit > 0 {
		body["limit"] = limit
	}
	return &p, Request(nc, "query.hot_leads."+org, body, &p, Timeout)
}

type Authorization struct {
	Allowed        bool   `msgpack:"allowed"`
	Reason         string `msgpack:"reason"`
	AvailablePence int64  `msgpack:"available_pence"` // balance + debt limit - held
	HeldPence      int64  `msgpack:"held_pence"`
	Hold           string `msgpack:"hold,omitempty"` // placed, active, settled, expired, refused
}

// Authorize asks whether a call may start. With hold (and its callID) it
// also reserves the call's credit, once per callID.
func Authorize(nc *nats.Conn, org, callID string, hold ...bool) (*Authorization, error) {
	var a Authorization
	body := map[string]any{}
	if callID != "" {
		body["call_id"] = callID
	}
	if len(hold) > 0 && hold[0] {
		body["hold"] = true
	}
	return &a, Request(nc, "billing.authorize."+org, body, &a, Timeout)
}

// PutCredential stores config for provider (type "" is "default").
func PutCredential(nc *nats.Conn, org, provider, typ string, config []byte) error {
	body := map[string]any{"provider": provider, "config": config}
	if typ != "" {
		body["type"] = typ
	}
	return Request(nc, "credentials.put."+org, body, nil, Timeout)
}

// GetCredential returns a credential's secret: the request carries a
// one-time X25519 key, and vox-vault's sealed reply is opened here, so
// the secret never crosses NATS in the clear.
func GetCredential(nc *nats.Conn, org, provider, typ string) ([]byte, error) {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	defer func() { *priv = [32]byte{} }()
	body := map[string]any{"provider": provider, "reply_key": pub[:]}
	if typ != "" {
		body["type"] = typ
	}
	var reply struct {
		Sealed []byte `msgpack:"sealed"`
	}
	if err := Request(nc, "credentials.get."+org, body, &reply, Timeout); err != nil {
		return nil, err
	}
	secret, ok := box.OpenAnonymous(nil, reply.Sealed, pub, priv)
	if !ok {
		return nil, errors.New("vox: the sealed credential does not open with this key")
	}
	return secret, nil
}

// FollowAlerts reads ALERTS through the durable pull consumer durable
// (created on first use, for filter, e.g. "alert.hot_lead.*"; "" is
// "alert.>"), calls handle for each alert and acks it when handle returns
// nil (an error naks it: it comes again). It returns when stop is closed.
func FollowAlerts(js nats.JetStreamContext, durable, filter string, stop <-chan struct{},
	handle func(Alert) error) error {
	if filter == "" {
		filter = "alert.>"
	}
	sub, err := js.PullSubscribe(filter, durable, nats.BindStream("ALERTS"), nats.ManualAck())
	if err != nil {
		return err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the durable stays
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		msgs, err := sub.Fetch(16, nats.MaxWait(500*time.Millisecond))
		if err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		for _, m := range msgs {
			a, err := decodeAlert(m)
			if err == nil {
				err = handle(a)
			}
			if err != nil {
				_ = m.Nak()
			} else {
				_ = m.Ack()
			}
		}
	}
}

func decodeAlert(m *nats.Msg) (Alert, error) {
	a := Alert{Subject: m.Subject}
	for i, dots := 0, 0; i < len(m.Subject); i++ {
		if m.Subject[i] == '.' {
			if dots++; dots == 2 {
				a.Kind = m.Subject[:i]
				break
			}
		}
	}
	switch a.Kind {
	case "alert.hot_lead":
		a.HotLead = &HotLeadAlert{}
		return a, msgpack.Unmarshal(m.Data, a.HotLead)
	case "alert.low_balance", "alert.debt_limit":
		a.Wallet = &WalletAlert{}
		return a, msgpack.Unmarshal(m.Data, a.Wallet)
	}
	return a, nil
}
