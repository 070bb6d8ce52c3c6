// An alert consumer: a durable consumer on ALERTS, one line an alert,
// until interrupted.
// usage: alerts <durable> [filter, e.g. alert.hot_lead.*]   (VOX_NATS_URL)
package main

import (
	"fmt"
	"os"
	"os/signal"

	vox "vox.example/client"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: alerts <durable> [filter]")
		os.Exit(2)
	}
	filter := ""
	if len(os.Args) > 2 {
		filter = os.Args[2]
	}
	nc, js, err := vox.Connect("alerts")
	if err != nil {
		fmt.Fprintln(os.Stderr, "alerts:", err)
		os.Exit(3)
	}
	defer nc.Close()
	stop := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() { <-sig; close(stop) }()
	err = vox.FollowAlerts(js, os.Args[1], filter, stop, func(a vox.Alert) error {
		switch {
		case a.HotLead != nil:
			fmt.Printf("%s score=%d urgency=%s contact=%s\n", a.Subject, a.HotLead.LeadScore,
				a.HotLead.UrgencyLevel, a.HotLead.ContactID)
		case a.Wallet != nil:
			fmt.Printf("%s balance=%dp\n", a.Subject, a.Wallet.BalancePence)
		default:
			fmt.Println(a.Subject, "(a kind this client does not know)")
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "alerts:", err)
		os.Exit(1)
	}
}
