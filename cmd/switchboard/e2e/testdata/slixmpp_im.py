#!/usr/bin/python3
"""Two slixmpp users for the end-to-end IM interop test.

In one asyncio loop, A and B log in over STARTTLS (trusting only the CA
file given), fetch their rosters and send initial presence. Then:

  1. A asks B for a subscription; B approves it and asks back; A approves.
     Once each roster shows the other with subscription 'both' and each
     has seen the other available: "SUBSCRIBED".
  2. A sends B a chat message: "CHAT <from> <body>" when B has it.
  3. B logs out; when A learns it (unavailable presence): "OFFLINE".
  4. A sends a chat message to B's bare JID and pings the server (the
     router has handled the message before the ping's answer).
  5. B logs in again and sends initial presence: "DELAYED <from> <body>
     <stamp>" for the stored message, with its XEP-0203 stamp.

Then "DONE" and exit 0; any failure, or --timeout seconds, exits
non-zero with a line on stderr. Lines are flushed as they are printed.
"""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import slixmpp


def say(*words):
    print(*words, flush=True)


class User(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0203")
        self.started = asyncio.get_event_loop().create_future()
        self.messages = asyncio.Queue()
        self.online = set()
        self.offline = asyncio.Queue()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("got_online", lambda p: self.online.add(p["from"].bare))
        self.add_event_handler("got_offline", lambda p: self.offline.put_nowait(p["from"].bare))
        self.add_event_handler("failed_auth", lambda _e: self.fail("authentication failed"))

    def fail(self, why):
        if not self.started.done():
            self.started.set_exception(RuntimeError(why))

    async def on_start(self, _event):
        await self.get_roster()
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            self.messages.put_nowait(msg)

    def sub(self, other):
        return self.client_roster[other]["subscription"]


async def login(args, jid, password):
    u = User(jid, password, args.cafile)
    # Approve requests, and ask back (slixmpp's roster defaults, set
    # here so the test does not depend on them).
    u.roster.auto_authorize = True
    u.roster.auto_subscribe = True
    u.connect(address=(args.host, args.port), use_ssl=False,
              force_starttls=True, disable_starttls=False)
    await u.started
    return u


async def until(what, cond, timeout):
    loop = asyncio.get_event_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise RuntimeError("timed out waiting for " + what)
        await asyncio.sleep(0.05)


async def scenario(args):
    a = await login(args, args.a, args.a_password)
    b = await login(args, args.b, args.b_password)
    a_bare, b_bare = a.boundjid.bare, b.boundjid.bare

    a.send_presence_subscription(pto=b_bare)
    await until("mutual subscription and presence",
                lambda: a.sub(b_bare) == "both" and b.sub(a_bare) == "both"
                and b_bare in a.online and a_bare in b.online, 20)
    say("SUBSCRIBED")

    a.send_message(mto=b_bare, mbody="hello B", mtype="chat")
    m = await asyncio.wait_for(b.messages.get(), 10)
    say("CHAT", m["from"].full, m["body"])

    await b.disconnect(wait=2.0)
    while True:
        who = await asyncio.wait_for(a.offline.get(), 10)
        if who == b_bare:
            break
    say("OFFLINE")

    a.send_message(mto=b_bare, mbody="while you were away", mtype="chat")
    await a["xep_0199"].ping(jid=a.boundjid.domain, timeout=10)

    b2 = await login(args, args.b + "2", args.b_password)
    m = await asyncio.wait_for(b2.messages.get(), 10)
    stamp = m["delay"]["stamp"]
    say("DELAYED", m["from"].full, m["body"].replace(" ", "_"), stamp.isoformat() if stamp else "none")
    for u in (a, b2):
        await u.disconnect(wait=2.0)
    say("DONE")


async def main(args):
    try:
        await asyncio.wait_for(scenario(args), args.timeout)
        return 0
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        print("failed:", repr(e), file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--a-password", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--b-password", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--timeout", type=float, default=45)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        stream=sys.stderr)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sys.exit(loop.run_until_complete(main(args)))
