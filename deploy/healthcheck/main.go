// Command healthcheck is the container health probe of the cratestream image:
// the runtime image is distroless (no shell, curl or wget), so
// docker-compose.yml's health checks run this instead.
//
//	healthcheck http://127.0.0.1:9464/readyz
//
// It exits 0 when the URL answers 2xx within the timeout and 1 otherwise,
// printing the response body (the ops server's JSON of failed checks).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck <url>")
		os.Exit(2)
	}
	os.Exit(probe(os.Args[1], 3*time.Second))
}

func probe(url string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(os.Stderr, "%s: %s %s\n", url, resp.Status, body)
		return 1
	}
	return 0
}
