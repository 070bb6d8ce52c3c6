// A payments bridge shaped like a Stripe webhook endpoint: POST /webhook
// with a Stripe event; payment_intent.succeeded becomes payment.succeeded
// for the org in the intent's metadata.org_id, once the Stripe-Signature
// (HMAC-SHA256 of "<t>.<body>" with STRIPE_WEBHOOK_SECRET, at most 5
// minutes old) checks. The Stripe event id is the event_id, so Stripe's
// retries are duplicates; 200 once JetStream stored it, 503 otherwise (so
// Stripe retries), 400 for a bad signature or body.
// usage: STRIPE_WEBHOOK_SECRET=whsec_... stripebridge [addr, default 127.0.0.1:8787]
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	vox "vox.example/client"
)

func signed(secret, header string, body []byte) bool {
	var t, v1 string
	for _, p := range strings.Split(header, ",") {
		if k, v, ok := strings.Cut(p, "="); ok && k == "t" {
			t = v
		} else if ok && k == "v1" {
			v1 = v
		}
	}
	ts, err := strconv.ParseInt(t, 10, 64)
	if err != nil || math.Abs(float64(time.Now().Unix()-ts)) > 300 {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(t + "."))
	mac.Write(body)
	got, err := hex.DecodeString(v1)
	return err == nil && hmac.Equal(got, mac.Sum(nil))
}

type stripeEvent struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	Data    struct {
		Object struct {
			ID             string            `json:"id"`
			Amount         int64             `json:"amount"`
			AmountReceived int64             `json:"amount_received"`
			Description    string            `json:"description"`
			Metadata       map[string]string `json:"metadata"`
		} `json:"object"`
	} `json:"data"`
}

func main() {
	secret := os.Getenv("STRIPE_WEBHOOK_SECRET")
	if secret == "" {
		fmt.Fprintln(os.Stderr, "stripebridge: set STRIPE_WEBHOOK_SECRET")
		os.Exit(2)
	}
	addr := "127.0.0.1:8787"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	nc, js, err := vox.Connect("stripebridge")
	if err != nil {
		fmt.Fprintln(os.Stderr, "stripebridge:", err)
		os.Exit(3)
	}
	defer nc.Close()
	http.HandleFunc("/webhook", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if r.Method != http.MethodPost || err != nil {
			http.Error(w, "POST /webhook", http.StatusNotFound)
			return
		}
		if !signed(secret, r.Header.Get("Stripe-Signature"), body) {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		var ev stripeEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		if ev.Type != "payment_intent.succeeded" {
			fmt.Fprintln(w, "ignored", ev.Type)
			return
		}
		pi := ev.Data.Object
		amount := pi.AmountReceived
		if amount == 0 {
			amount = pi.Amount
		}
		ack, err := vox.PublishEvent(js, &vox.PaymentSucceeded{EventID: ev.ID,
			OrgID: pi.Metadata["org_id"], StripePaymentIntentID: pi.ID, AmountPence: amount,
			Description: pi.Description, OccurredAt: time.Unix(ev.Created, 0)})
		if err != nil {
			http.Error(w, "not stored: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "stored seq=%d duplicate=%v\n", ack.Sequence, ack.Duplicate)
	})
	fmt.Println("stripebridge listening on", addr)
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "stripebridge:", err)
		os.Exit(1)
	}
}
