// The kit against the running actors (VOX_NATS_URL; voxctl from VOX_BIN
// creates the org) and the contract's JSON vectors (VOX_SOURCE_DIR).
// tests/integration/test_kits.sh starts the actors and runs this.
package vox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

func uuid(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func setup(t *testing.T) (*nats.Conn, nats.JetStreamContext, string) {
	url, bin := os.Getenv("VOX_NATS_URL"), os.Getenv("VOX_BIN")
	if url == "" || bin == "" {
		t.Fatal("VOX_NATS_URL and VOX_BIN are needed (tests/integration/test_kits.sh)")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	org := uuid(t)
	out, err := exec.Command(filepath.Join(bin, "voxctl"), "org", "create", "--id", org,
		"--name", "Go Clinic", "--email", "go@example.com", "--balance", "1000",
		"--low-balance", "0").CombinedOutput()
	if err != nil {
		t.Fatalf("voxctl org create: %v: %s", err, out)
	}
	return nc, js, org
}

// eventually polls f until ok, about 20 s.
func eventually(t *testing.T, what string, f func() bool) {
	for i := 0; i < 200; i++ {
		if f() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

func TestKitAgainstTheActors(t *testing.T) {
	nc, js, org := setup(t)
	call := uuid(t)
	started := time.Now().Add(-2 * time.Minute)
	ack, err := PublishEvent(js, &CallStarted{EventID: "go-" + call + "-s", OrgID: org, CallID: call,
		Direction: "inbound", FromNumber: "+447700900123", ToNumber: "+442071838750",
		StartedAt: started})
	if err != nil || ack.Stream != "EVENTS" || ack.Duplicate {
		t.Fatalf("call.started: %v %+v", err, ack)
	}
	ended := &CallEnded{EventID: "go-" + call + "-e", OrgID: org, CallID: call, EndedAt: time.Now(),
		DurationSeconds: 120, Status: "completed", StartedAt: &started}
	if ack, err = PublishEvent(js, ended); err != nil || ack.Duplicate {
		t.Fatalf("call.ended: %v %+v", err, ack)
	}
	if ack, err = PublishEvent(js, ended); err != nil || !ack.Duplicate {
		t.Fatalf("call.ended again: %v %+v, want a duplicate", err, ack)
	}
	// 120 s at 70p a minute: 140p, once
	eventually(t, "the wallet at 860p", func() bool {
		w, err := GetWallet(nc, org)
		return err == nil && w.BalancePence == 860
	})
	eventually(t, "the completed call in query.calls", func() bool {
		p, err := Calls(nc, org, CallsQuery{Limit: 5})
		return err == nil && len(p.Items) == 1 && p.Items[0]["status"] == "completed"
	})
	c, err := Call(nc, org, call)
	if err != nil || fmt.Sprint(c["duration_seconds"]) != "120" {
		t.Fatalf("query.call: %v %v", err, c)
	}
	if a, err := Authorize(nc, org, ""); err != nil || !a.Allowed {
		t.Fatalf("billing.authorize: %v %+v", err, a)
	}

	// a hot lead through a durable consumer
	stop := make(chan struct{})
	got := make(chan Alert, 4)
	done := make(chan error, 1)
	go func() {
		done <- FollowAlerts(js, "go-"+org[:8], "alert.hot_lead."+org, stop,
			func(a Alert) error { got <- a; return nil })
	}()
	time.Sleep(300 * time.Millisecond) // the consumer exists before the lead
	if _, err := PublishEvent(js, &LeadScored{EventID: "go-lead-" + uuid(t), OrgID: org,
		Phone: "+447700900998", LeadScore: 92, ScoredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a.Kind != "alert.hot_lead" || a.HotLead == nil || a.HotLead.OrgID != org ||
			a.HotLead.LeadScore != 92 || a.HotLead.CreatedAt.IsZero() {
			t.Fatalf("alert: %+v %+v", a, a.HotLead)
		}
	case err := <-done:
		t.Fatalf("FollowAlerts: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no hot-lead alert")
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// a credential, sealed to a one-time key
	if err := PutCredential(nc, org, "twilio", "", []byte(`{"token":"tok-go-1"}`)); err != nil {
		t.Fatal(err)
	}
	secret, err := GetCredential(nc, org, "twilio", "")
	if err != nil || string(secret) != `{"token":"tok-go-1"}` {
		t.Fatalf("credentials.get: %v %q", err, secret)
	}

	// every error reply, with its code, reason and field
	cases := []struct {
		f             func() error
		code          int
		reason, field string
	}{
		{func() error { _, err := Calls(nc, org, CallsQuery{Limit: 1000}); return err }, 400, "out_of_range", "limit"},
		{func() error { _, err := GetWallet(nc, uuid(t)); return err }, 404, "unknown_org", ""},
		{func() error { return Request(nc, "query.wallet.not-a-uuid", nil, nil, Timeout) }, 400, "bad_uuid", ""},
		{func() error { _, err := Call(nc, org, uuid(t)); return err }, 404, "not_found", ""},
		{func() error { _, err := GetCredential(nc, org, "nope", ""); return err }, 400, "bad_enum", "provider"},
		{func() error { _, err := Authorize(nc, org, "x"); return err }, 400, "bad_uuid", "call_id"},
	}
	for i, c := range cases {
		var e *Error
		if err := c.f(); !errors.As(err, &e) {
			t.Fatalf("case %d: %v is not an *Error", i, err)
		}
		if e.Code != c.code || e.Reason != c.reason || (c.field != "" && e.Field != c.field) {
			t.Fatalf("case %d: %+v, want %d %s %s", i, e, c.code, c.reason, c.field)
		}
	}
}

// Every valid JSON vector decodes to its JSON: the time to the nanosecond.
func TestJSONVectors(t *testing.T) {
	src := os.Getenv("VOX_SOURCE_DIR")
	if src == "" {
		t.Fatal("VOX_SOURCE_DIR is needed")
	}
	files, err := filepath.Glob(filepath.Join(src, "subjects", "vectors", "json", "*.json"))
	if err != nil || len(files) < 8 {
		t.Fatalf("vectors: %v %v", files, err)
	}
	valid := 0
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Format string `json:"format"`
			Cases  []struct {
				Name  string         `json:"name"`
				Hex   string         `json:"hex"`
				JSON  map[string]any `json:"json"`
				Error any            `json:"error"`
			} `json:"cases"`
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc.Format != "vox-vectors/1" {
			continue // requests.json: what vox says to a request, checked by vox
		}
		for _, c := range doc.Cases {
			if c.Error != nil {
				continue
			}
			raw, _ := hex.DecodeString(c.Hex)
			// keys the contract does not define are skipped unread, as
			// vox does (their values may be extensions nobody knows)
			var got map[string]msgpack.RawMessage
			if err := msgpack.Unmarshal(raw, &got); err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			for k, want := range c.JSON {
				var v any
				if err := msgpack.Unmarshal(got[k], &v); err != nil {
					t.Fatalf("%s: %s: %v", c.Name, k, err)
				}
				if !same(v, want) {
					t.Fatalf("%s: %s: %v (%T), want %v", c.Name, k, v, v, want)
				}
			}
			valid++
		}
	}
	if valid < 800 {
		t.Fatalf("only %d valid vectors", valid)
	}
}

// same compares a msgpack-decoded value with the vector's JSON one, as
// vox's decoder normalizes: UUIDs lowercased, integer milliseconds as a
// timestamp.
func same(v any, want any) bool {
	switch w := want.(type) {
	case json.Number:
		if i, err := w.Int64(); err == nil {
			switch n := v.(type) {
			case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
				return fmt.Sprint(n) == fmt.Sprint(i)
			}
			if u, err := json.Number(w).Float64(); err == nil && isUint(v) {
				return fmt.Sprint(v) == fmt.Sprintf("%.0f", u)
			}
		}
		f, _ := w.Float64()
		switch n := v.(type) {
		case float64:
			return math.Abs(n-f) < 1e-12
		case float32:
			return math.Abs(float64(n)-f) < 1e-6
		case uint64:
			return fmt.Sprint(n) == w.String()
		}
		return false
	case string:
		switch x := v.(type) {
		case time.Time:
			return x.UTC().Format("2006-01-02T15:04:05.000000000Z") == w
		case string:
			return x == w || strings.ToLower(x) == w
		case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
			ms, _ := json.Number(fmt.Sprint(x)).Int64()
			return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000000000Z") == w
		}
	}
	return fmt.Sprint(v) == fmt.Sprint(want)
}

func isUint(v any) bool {
	_, ok := v.(uint64)
	return ok
}

// Every error-reply vector is read as its error; a success is none.
func TestErrorReplyVectors(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(os.Getenv("VOX_SOURCE_DIR"), "subjects", "vectors",
		"json", "error_replies.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Name    string            `json:"name"`
			Headers map[string]string `json:"headers"`
			Error   *struct {
				Code    int    `json:"code"`
				Reason  string `json:"reason"`
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"error"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(text, &doc); err != nil || len(doc.Cases) < 5 {
		t.Fatalf("%v %d", err, len(doc.Cases))
	}
	for _, c := range doc.Cases {
		h := nats.Header{}
		for k, v := range c.Headers {
			h.Set(k, v)
		}
		e := ErrorFromHeader("query.x", h)
		if c.Error == nil {
			if e != nil {
				t.Fatalf("%s: %+v, want no error", c.Name, e)
			}
			continue
		}
		if e == nil || e.Code != c.Error.Code || e.Reason != c.Error.Reason ||
			e.Field != c.Error.Field || e.Message != c.Error.Message {
			t.Fatalf("%s: %+v, want %+v", c.Name, e, c.Error)
		}
	}
}

// Every reply vector decodes to its JSON, through the reply types.
func TestReplyVectors(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(os.Getenv("VOX_SOURCE_DIR"), "subjects", "vectors",
		"json", "replies.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Subject string          `json:"subject"`
			Name    string          `json:"name"`
			Hex     string          `json:"hex"`
			JSON    json.RawMessage `json:"json"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(text, &doc); err != nil || len(doc.Cases) < 5 {
		t.Fatalf("%v %d", err, len(doc.Cases))
	}
	for _, c := range doc.Cases {
		raw, _ := hex.DecodeString(c.Hex)
		var got, want map[string]any
		if err := msgpack.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		dec := json.NewDecoder(bytes.NewReader(c.JSON))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !sameTree(got, want) {
			t.Fatalf("%s: %v, want %v", c.Name, got, want)
		}
		// and through the kit's own reply types
		switch c.Subject {
		case "query.wallet":
			var w Wallet
			if err := msgpack.Unmarshal(raw, &w); err != nil ||
				fmt.Sprint(w.BalancePence) != fmt.Sprint(want["balance_pence"]) ||
				fmt.Sprint(w.HeldPence) != fmt.Sprint(want["held_pence"]) {
				t.Fatalf("%s: %v %+v", c.Name, err, w)
			}
		case "billing.authorize":
			var a Authorization
			if err := msgpack.Unmarshal(raw, &a); err != nil || a.Allowed != want["allowed"] ||
				fmt.Sprint(a.HeldPence) != fmt.Sprint(want["held_pence"]) {
				t.Fatalf("%s: %v %+v", c.Name, err, a)
			}
		}
	}
}

// sameTree compares maps and arrays key by key with same.
func sameTree(v, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok || len(m) != len(w) {
			return false
		}
		for k, x := range w {
			if !sameTree(m[k], x) {
				return false
			}
		}
		return true
	case []any:
		a, ok := v.([]any)
		if !ok || len(a) != len(w) {
			return false
		}
		for i := range w {
			if !sameTree(a[i], w[i]) {
				return false
			}
		}
		return true
	case nil:
		return v == nil
	case bool:
		return v == w
	}
	return same(v, want)
}
