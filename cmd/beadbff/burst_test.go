package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// stormTarget is one (server, session) pair a burst calls.
type stormTarget struct {
	base   string // the server's base URL
	cookie *http.Cookie
}

// burstClient keeps every connection of a 200-call burst, so that repeated bursts do not pay for new ones.
var burstClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 200}}

// burst sends calls concurrent GETs of path, call i to targets[i%len(targets)] with its session cookie
// (and X-CSRF: 1), waits for all, and returns the number of calls that did not answer 200 and one of
// them described. It reports rather than failing the test, because it runs the calls in goroutines.
func burst(calls int, path string, targets []stormTarget) (failed int, example string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range calls {
		wg.Go(func() {
			tg := targets[i%len(targets)]
			problem := getWithCookie(tg.base+path, tg.cookie)
			if problem == "" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if failed++; example == "" {
				example = fmt.Sprintf("call %d on %s: %s", i, tg.base, problem)
			}
		})
	}
	wg.Wait()
	return failed, example
}

// getWithCookie is one GET with the session cookie ck; it returns "" for a 200, else what went wrong.
func getWithCookie(url string, ck *http.Cookie) string {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Cookie", ck.Name+"="+ck.Value)
	resp, err := burstClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%d %.300s", resp.StatusCode, body)
	}
	return ""
}
