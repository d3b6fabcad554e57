// SPDX-License-Identifier: Apache-2.0
//
// go-note-verify: checks linecert's signed notes with the Go module
// mirror's own verifier, golang.org/x/mod/sumdb/note (Debian
// golang-golang-x-mod-dev), not with linecert's code.
//
//	go-note-verify VKEY FILE...
//
// VKEY is an Ed25519 verifier key ("name+hash+base64", as printed by
// `linecert audit pubkey --vkey`). Each FILE is a checkpoint note, or a
// linecert export or receipt in JSON Lines: then the checkpoint in its
// header and the note of its manifest are checked. Every note must
// open with note.Open against VKEY (other signature lines, such as the
// ECDSA one, are left unverified as the package does). One line per
// note on stdout; exit 0 when all open, 1 at the first that does not,
// 2 on usage errors.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

type item struct {
	what string
	text string
}

// notes of one file: the file itself, or an export's checkpoint and
// manifest.
func notes(data []byte) ([]item, error) {
	if len(data) == 0 || data[0] != '{' {
		return []item{{"checkpoint", string(data)}}, nil
	}
	var out []item
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var line map[string]interface{}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("not JSON Lines: %v", err)
		}
		switch line["type"] {
		case "header":
			cp, _ := line["checkpoint"].(string)
			out = append(out, item{"header checkpoint", cp})
		case "manifest":
			m, _ := line["note"].(string)
			out = append(out, item{"manifest", m})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) != 2 {
		return nil, fmt.Errorf("expected a header and a manifest, found %d notes", len(out))
	}
	return out, nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: go-note-verify VKEY FILE...")
		os.Exit(2)
	}
	v, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-note-verify: verifier key: %v\n", err)
		os.Exit(2)
	}
	known := note.VerifierList(v)
	for _, path := range os.Args[2:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-note-verify: %v\n", err)
			os.Exit(2)
		}
		items, err := notes(data)
		if err != nil {
			fmt.Printf("%s: FAILED: %v\n", path, err)
			os.Exit(1)
		}
		for _, it := range items {
			n, err := note.Open([]byte(it.text), known)
			if err != nil {
				fmt.Printf("%s: %s: FAILED: %v\n", path, it.what, err)
				os.Exit(1)
			}
			if len(n.Sigs) != 1 || n.Sigs[0].Name != v.Name() || n.Sigs[0].Hash != v.KeyHash() {
				fmt.Printf("%s: %s: FAILED: not signed by %s\n", path, it.what, v.Name())
				os.Exit(1)
			}
			first := strings.SplitN(n.Text, "\n", 2)[0]
			fmt.Printf("%s: %s: OK (%s, %d other signature lines)\n", path, it.what, first, len(n.UnverifiedSigs))
		}
	}
}
