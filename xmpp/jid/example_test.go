package jid_test

import (
	"fmt"

	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

func ExampleParse() {
	j, err := jid.Parse("Juliet@Example.COM./Balcony")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(j)
	fmt.Println(j.Bare())
	fmt.Println(j.Domain())

	_, err = jid.Parse("@example.com")
	fmt.Println(err)
	// Output:
	// juliet@example.com/Balcony
	// juliet@example.com
	// example.com
	// jid: bad localpart: empty
}
