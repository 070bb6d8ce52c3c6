// A dashboard's questions: the wallet and the latest calls of an org.
// usage: dashboard <org_id>   (VOX_NATS_URL, default nats://127.0.0.1:4222)
package main

import (
	"errors"
	"fmt"
	"os"

	vox "vox.example/client"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard <org_id>")
		os.Exit(2)
	}
	org := os.Args[1]
	nc, _, err := vox.Connect("dashboard")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(3)
	}
	defer nc.Close()
	w, err := vox.GetWallet(nc, org)
	if err == nil {
		fmt.Printf("balance %dp, %d minutes left\n", w.BalancePence, w.MinutesRemaining)
		var p *vox.Page
		if p, err = vox.Calls(nc, org, vox.CallsQuery{Limit: 10}); err == nil {
			for _, c := range p.Items {
				fmt.Println(c["created_at"], c["status"], c["duration_seconds"])
			}
		}
	}
	var e *vox.Error
	if errors.As(err, &e) {
		fmt.Fprintf(os.Stderr, "%d %s (%s): %s\n", e.Code, e.Reason, e.Field, e.Message)
		os.Exit(1)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(3)
	}
}
