package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// password reads the password for account: from file ("-" is standard
// input), else from the terminal without echo (asked twice), else the
// first line of standard input. Never from an argument, which other
// users of the machine could read in the process list.
func (c *call) password(file, account string) (string, error) {
	var p string
	switch {
	case file == "-":
		line, err := firstLine(c.stdin)
		if err != nil {
			return "", usagef("--password-file -: %v", err)
		}
		p = line
	case file != "":
		fh, err := os.Open(file)
		if err != nil {
			return "", usagef("--password-file: %v", err)
		}
		defer fh.Close()
		line, err := firstLine(fh)
		if err != nil {
			return "", usagef("--password-file %s: %v", file, err)
		}
		p = line
	default:
		if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprintf(c.stderr, "Password for %s: ", account)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(c.stderr)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(c.stderr, "Again: ")
			b2, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(c.stderr)
			if err != nil {
				return "", err
			}
			if string(b) != string(b2) {
				return "", usagef("the passwords differ")
			}
			p = string(b)
		} else {
			line, err := firstLine(c.stdin)
			if err != nil {
				return "", usagef("no password: use --password-file, or give it on standard input (%v)", err)
			}
			p = line
		}
	}
	if p == "" {
		return "", usagef("empty password")
	}
	return p, nil
}

// firstLine reads one line, without its line ending.
func firstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		if err == io.EOF {
			return "", fmt.Errorf("nothing to read")
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
