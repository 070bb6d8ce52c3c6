// A telephony bridge: one call (call.started, then call.ended) for an org.
// usage: callbridge <org_id> [seconds]   (VOX_NATS_URL)
package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"time"

	vox "vox.example/client"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: callbridge <org_id> [seconds]")
		os.Exit(2)
	}
	org, seconds := os.Args[1], int64(187)
	if len(os.Args) > 2 {
		s, err := strconv.ParseInt(os.Args[2], 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "callbridge: seconds:", err)
			os.Exit(2)
		}
		seconds = s
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	call := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	nc, js, err := vox.Connect("callbridge")
	if err != nil {
		fmt.Fprintln(os.Stderr, "callbridge:", err)
		os.Exit(3)
	}
	defer nc.Close()
	started := time.Now().Add(-time.Duration(seconds) * time.Second)
	fmt.Println("call_id=" + call)
	for _, ev := range []vox.Event{
		&vox.CallStarted{EventID: "bridge-" + call + "-started", OrgID: org, CallID: call,
			Direction: "inbound", FromNumber: "+447700900123", ToNumber: "+442071838750",
			StartedAt: started},
		&vox.CallEnded{EventID: "bridge-" + call + "-ended", OrgID: org, CallID: call,
			EndedAt: time.Now(), DurationSeconds: seconds, Status: "completed",
			StartedAt: &started},
	} {
		ack, err := vox.PublishEvent(js, ev)
		if err != nil {
			fmt.Fprintln(os.Stderr, "callbridge:", ev.Kind(), err)
			os.Exit(3)
		}
		fmt.Printf("%s stream=%s seq=%d duplicate=%v\n", ev.Kind(), ack.Stream, ack.Sequence,
			ack.Duplicate)
	}
}
