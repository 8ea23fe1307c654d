// tlogverify checks claw-governance audit checkpoints and proofs with the Go reference implementation
// (golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog) and nothing else.
//
// Build offline on Debian (apt-get install golang-go golang-golang-x-mod-dev):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o tlogverify ./tools/tlogverify
//
// Usage (exit 0 = verified, 1 = rejected, 2 = usage):
//
//	tlogverify checkpoint VKEY CHECKPOINT_FILE
//	tlogverify proof VKEY TLOG_PROOF_FILE ENTRY_FILE       (ENTRY_FILE: the entry line, newline optional)
//	tlogverify consistency VKEY OLD_CHECKPOINT NEW_CHECKPOINT PROOF_FILE   (one base64 hash per line)
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}

func read(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fail(2, "%v", err)
	}
	return data
}

// openCheckpoint verifies the note signature and parses origin, size and root hash.
func openCheckpoint(vkey string, msg []byte) (string, int64, tlog.Hash) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail(2, "verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail(1, "checkpoint signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail(1, "checkpoint: too few lines")
	}
	if lines[0] != verifier.Name() {
		fail(1, "checkpoint origin %q is not the key name %q", lines[0], verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		fail(1, "checkpoint: bad tree size")
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		fail(1, "checkpoint: bad root hash")
	}
	var root tlog.Hash
	copy(root[:], raw)
	return lines[0], size, root
}

func hashes(lines []string) []tlog.Hash {
	var out []tlog.Hash
	for _, line := range lines {
		if line == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(raw) != tlog.HashSize {
			fail(1, "bad proof hash %q", line)
		}
		var h tlog.Hash
		copy(h[:], raw)
		out = append(out, h)
	}
	return out
}

func main() {
	if len(os.Args) < 4 {
		fail(2, "usage: tlogverify checkpoint|proof|consistency VKEY FILE...")
	}
	vkey := os.Args[2]
	switch os.Args[1] {
	case "checkpoint":
		origin, size, root := openCheckpoint(vkey, read(os.Args[3]))
		fmt.Printf("OK checkpoint %s size %d root %s\n", origin, size, root)
	case "proof":
		if len(os.Args) != 5 {
			fail(2, "usage: tlogverify proof VKEY TLOG_PROOF_FILE ENTRY_FILE")
		}
		text := string(read(os.Args[3]))
		cut := strings.Index(text, "\n\n")
		if cut < 0 {
			fail(1, "proof: no blank line before the checkpoint")
		}
		head := strings.Split(text[:cut], "\n")
		if head[0] != "c2sp.org/tlog-proof@v1" {
			fail(1, "proof: not a c2sp.org/tlog-proof@v1 file")
		}
		head = head[1:]
		if len(head) > 0 && strings.HasPrefix(head[0], "extra ") {
			head = head[1:]
		}
		if len(head) == 0 || !strings.HasPrefix(head[0], "index ") {
			fail(1, "proof: missing index line")
		}
		index, err := strconv.ParseInt(strings.TrimPrefix(head[0], "index "), 10, 64)
		if err != nil {
			fail(1, "proof: bad index")
		}
		_, size, root := openCheckpoint(vkey, []byte(text[cut+2:]))
		entry := bytes.TrimSuffix(read(os.Args[4]), []byte("\n"))
		if err := tlog.CheckRecord(tlog.RecordProof(hashes(head[1:])), size, root, index, tlog.RecordHash(entry)); err != nil {
			fail(1, "inclusion proof: %v", err)
		}
		fmt.Printf("OK entry index %d is in the tree of size %d\n", index, size)
	case "consistency":
		if len(os.Args) != 6 {
			fail(2, "usage: tlogverify consistency VKEY OLD_CHECKPOINT NEW_CHECKPOINT PROOF_FILE")
		}
		_, oldSize, oldRoot := openCheckpoint(vkey, read(os.Args[3]))
		_, newSize, newRoot := openCheckpoint(vkey, read(os.Args[4]))
		proof := hashes(strings.Split(string(read(os.Args[5])), "\n"))
		if err := tlog.CheckTree(tlog.TreeProof(proof), newSize, newRoot, oldSize, oldRoot); err != nil {
			fail(1, "consistency proof: %v", err)
		}
		fmt.Printf("OK tree %d extends tree %d\n", newSize, oldSize)
	default:
		fail(2, "unknown command %q", os.Args[1])
	}
}
