// Command kstatus prints what the kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus/status,
// the one Flux, kpt and cli-utils' appliers use to wait for objects) computes for objects.
//
// It reads one JSON object per line on stdin (as `kubectl get -o json` prints one object, made
// compact) and writes, for each, one JSON line: {"status": "Current|InProgress|Failed|...",
// "message": "..."} or {"error": "..."} when the library cannot compute one.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func compute(line []byte) result {
	// Unstructured's own decoder, as client-go's: integers stay int64, as the library reads them.
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(line); err != nil {
		return result{Error: fmt.Sprintf("not a Kubernetes object: %v", err)}
	}
	res, err := status.Compute(u)
	if err != nil {
		return result{Error: err.Error()}
	}
	return result{Status: res.Status.String(), Message: res.Message}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		if len(in.Bytes()) == 0 {
			continue
		}
		if err := out.Encode(compute(in.Bytes())); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
