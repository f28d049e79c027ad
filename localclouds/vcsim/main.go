// Command vcsim runs govmomi's vCenter simulator (the VPX inventory model) as fleetpatch's
// local vCenter: plain http on one loopback address, one login, until SIGTERM or SIGINT.
//
// It prints one line, the SDK URL without credentials, once the server accepts connections,
// and serves GET /__fleetpatch/health (200) on the same port, so a supervisor can wait for it
// without speaking SOAP. Built in GOPATH mode against Debian's govmomi (see
// scripts/build-vcsim.sh); kept to the simulator's public API of govmomi 0.24.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to serve on (port 0 picks a free port)")
	username := flag.String("username", "fleetpatch", "the only user name the simulator accepts")
	password := flag.String("password", "fleetpatch-local", "that user's password")
	flag.Parse()

	if *username == "" || *password == "" {
		fmt.Fprintln(os.Stderr, "vcsim: -username and -password must not be empty")
		os.Exit(2)
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		fmt.Fprintf(os.Stderr, "vcsim: creating the VPX model: %v\n", err)
		os.Exit(1)
	}
	defer model.Remove()

	// A Listen URL with a user makes the session manager accept exactly that login
	// (the default accepts any non-empty pair).
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	model.Service.HandleFunc("/__fleetpatch/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{\"status\":\"ok\"}\n"))
	})

	server := model.Service.NewServer() // listens before it returns
	defer server.Close()

	shown := *server.URL
	shown.User = nil
	fmt.Println(shown.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	sig := <-stop
	fmt.Fprintf(os.Stderr, "vcsim: %v, stopping\n", sig)
}
