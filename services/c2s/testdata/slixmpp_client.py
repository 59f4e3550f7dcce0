# A slixmpp client for the c2s interoperability test: it logs in, sends
# available presence and one chat message, and closes its stream.
#
# usage: slixmpp_client.py JID PASSWORD HOST PORT TO BODY [debug]
#
# slixmpp 1.8 knows only the tls-unique channel binding, which is undefined
# for TLS 1.3 (RFC 9266) and which the server does not offer; it then sends
# the GS2 flag 'y', which RFC 5802 section 6 obliges a server that offers
# -PLUS to refuse. Channel binding is turned off here, and SCRAM-SHA-256 is
# chosen, so the client says 'n' like one that cannot bind.
import ssl
import sys
import logging

from slixmpp import ClientXMPP

jid, password, host, port, to, body = sys.argv[1:7]
if len(sys.argv) > 7 and sys.argv[7] == "debug":
    logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(message)s")

ssl.SSLObject.get_channel_binding = lambda self, cb_type="tls-unique": None
ssl.SSLSocket.get_channel_binding = lambda self, cb_type="tls-unique": None


class Client(ClientXMPP):
    def __init__(self):
        super().__init__(jid, password, sasl_mech="SCRAM-SHA-256")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_all_auth", self.failed)
        self.add_event_handler("disconnected", self.gone)

    async def start(self, event):
        self.send_presence()
        self.send_message(mto=to, mbody=body, mtype="chat")
        print("BOUND", self.boundjid.full, flush=True)
        self.disconnect()

    def failed(self, event):
        print("AUTH FAILED", flush=True)
        self.disconnect()

    def gone(self, event):
        print("DISCONNECTED", flush=True)


c = Client()
c.ssl_context.check_hostname = False
c.ssl_context.verify_mode = ssl.CERT_NONE
c.connect((host, int(port)))
c.process(forever=False)
