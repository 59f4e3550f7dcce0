-- Test-only Prosody module: a static host map for outgoing s2s
-- connections, so that Prosody reaches test domains on loopback ports
-- without DNS or /etc/hosts.
--
--   switchboard_host_map = { ["s.test"] = { "127.0.0.1", 5269 } }
--
-- mod_s2s resolves a remote domain with net.resolvers.service.new
-- (_xmpp-server._tcp, then _xmpps-server._tcp); this module replaces that
-- constructor while it is loaded and answers mapped domains with the
-- mapped address. Other domains resolve as before.
local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";
local manual = require "net.resolvers.manual";

local map = module:get_option("switchboard_host_map", {});
local original = service.new;

service.new = function (hostname, service_name, conn_type, extra)
	local target = map[hostname];
	if not target then
		return original(hostname, service_name, conn_type, extra);
	end
	if service_name ~= "xmpp-server" then
		return manual.new({}, conn_type, extra); -- no direct TLS target
	end
	module:log("debug", "host map: %s is %s port %d", hostname, target[1], target[2]);
	return basic.new(target[1], target[2], conn_type, extra);
end

function module.unload()
	service.new = original;
end
