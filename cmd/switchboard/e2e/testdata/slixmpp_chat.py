#!/usr/bin/python3
"""One slixmpp client for the end-to-end interop test.

It logs in over STARTTLS, trusting only the CA file it is given, sends
initial presence, prints "READY <full JID> <SASL mechanism>", waits for a
message from --expect-from with the body --expect-body, prints "RECEIVED
<from> <body>", then sends --send-body to every --send-to address, prints
"SENT", closes the stream and exits 0. Any failure, or --timeout seconds
without getting there, exits non-zero with a line on stderr.

Every line it prints is flushed at once: the Go test reads them as they
come.
"""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import slixmpp


def say(*words):
    print(*words, flush=True)


class Chat(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.done = asyncio.get_event_loop().create_future()
        # Only the server's self-signed certificate is trusted, with
        # host name checking on (slixmpp's default context).
        self.ca_certs = Path(args.cafile)
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("disconnected", self.on_disconnected)

    def finish(self, code, why=""):
        if why:
            print(why, file=sys.stderr, flush=True)
        if not self.done.done():
            self.done.set_result(code)

    async def on_start(self, _event):
        self.send_presence()
        mech = self["feature_mechanisms"].mech
        say("READY", self.boundjid.full, mech.name if mech else "?")

    def on_failed_auth(self, _event):
        self.finish(3, "authentication failed")

    def on_disconnected(self, _event):
        self.finish(4, "disconnected before the exchange was done")

    def on_message(self, msg):
        if msg["type"] not in ("chat", "normal"):
            return
        frm, body = msg["from"], msg["body"]
        if frm.bare != self.args.expect_from or body != self.args.expect_body:
            say("IGNORED", frm.full, body)
            return
        say("RECEIVED", frm.full, body)
        for to in self.args.send_to:
            self.send_message(mto=to, mbody=self.args.send_body, mtype="chat")
        say("SENT")
        self.finish(0)


async def main(args):
    xmpp = Chat(args)
    xmpp.connect(address=(args.host, args.port), use_ssl=False,
                 force_starttls=True, disable_starttls=False)
    try:
        code = await asyncio.wait_for(xmpp.done, args.timeout)
    except asyncio.TimeoutError:
        code = 5
        print("timed out", file=sys.stderr, flush=True)
    # Close the stream properly (RFC 6120 section 4.4) and wait for it.
    try:
        await asyncio.wait_for(xmpp.disconnect(wait=2.0), 5)
    except asyncio.TimeoutError:
        print("no clean disconnect within 5s", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--expect-from", required=True)
    p.add_argument("--expect-body", required=True)
    p.add_argument("--send-to", action="append", default=[])
    p.add_argument("--send-body", required=True)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        stream=sys.stderr)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sys.exit(loop.run_until_complete(main(args)))
