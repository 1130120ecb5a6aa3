package doapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/fediops/fediops/doapi"
)

// A client for DigitalOcean's API, and what its errors say. Here a local
// server answers in DO's place, as DIGITALOCEAN_API_URL allows; a base URL
// that is neither https nor loopback is refused, so the token never
// travels in clear.
func ExampleNew() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"id":"not_found","message":"The resource you were accessing could not be found."}`)
	}))
	defer api.Close()

	_, err := doapi.New(doapi.Options{Token: "dop_v1_example", BaseURL: "http://api.example.org"})
	fmt.Println(err)

	c, err := doapi.New(doapi.Options{Token: "dop_v1_example", BaseURL: api.URL, Retries: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _, err = c.Droplets.Get(context.Background(), 42)
	fmt.Println(doapi.Wrap("get droplet 42", err))
	// Output:
	// DigitalOcean client: API URL http://api.example.org: the API URL must be https unless its host is loopback
	// get droplet 42: API 404: The resource you were accessing could not be found.
}
