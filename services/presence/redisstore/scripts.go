package redisstore

import "github.com/redis/go-redis/v9"

// The scripts below are the store's atomic steps. Redis runs a script as
// one command, so no other client sees or changes the keys halfway
// through, and two presence pods cannot both act on the same session.
//
// A session is one field of its account's hash, named by the resourcepart;
// its value is "id NUL node NUL bound NUL available NUL priority NUL
// presence" (see encode). Session ids and node names never contain NUL,
// so a script finds the id and node by the first two NULs; the presence
// stanza comes last and may hold anything. A node's set holds "bare NUL
// resource NUL id" for each of its sessions. Scripts derive the keys of
// the accounts and nodes they find from those values, which Redis allows
// on one server; on Redis Cluster the prefix must be a hash tag, such as
// "{sb}:", so that every key of the store lives in one slot.

// luaLib is prepended to every script.
const luaLib = `
local function head(v)
  local i = string.find(v, '\0', 1, true)
  local j = string.find(v, '\0', i + 1, true)
  return string.sub(v, 1, i - 1), string.sub(v, i + 1, j - 1), j
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// bindScript puts a session in its account and its node's set. It returns
// the session it replaced, or nil when the full JID was free or already
// held the same session id (then nothing changes). A bind from a node that
// was reaped or dropped makes that node due for the next reap: it is kept
// only if the node sends a heartbeat first. The set of nodes with sessions
// gains the node, and loses the replaced session's node if that was its
// last session.
//
// The session's roster-requested flag is set or cleared with it; the
// directed-presence targets of a session it replaces start their
// retention.
//
// KEYS: account, node set, dead nodes, live nodes, nodes with sessions,
// roster-requested hash.
// ARGV: node set key prefix, bare JID, resourcepart, session id, node, value,
// "1" if the session requested its roster, directed key prefix, retention
// in ms.
var bindScript = redis.NewScript(luaLib + `
local old = redis.call('HGET', KEYS[1], ARGV[3])
if old then
  local id, node = head(old)
  if id == ARGV[4] then return false end
  redis.call('SREM', ARGV[1] .. node, ARGV[2] .. '\0' .. ARGV[3] .. '\0' .. id)
  if redis.call('EXISTS', ARGV[1] .. node) == 0 then
    redis.call('SREM', KEYS[5], node)
  end
  redis.call('PEXPIRE', ARGV[8] .. ARGV[2] .. '/' .. ARGV[3] .. '\0' .. id, tonumber(ARGV[9]))
end
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[6], ARGV[3], ARGV[4])
else
  redis.call('HDEL', KEYS[6], ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[2] .. '\0' .. ARGV[3] .. '\0' .. ARGV[4])
redis.call('SADD', KEYS[5], ARGV[5])
if redis.call('ZSCORE', KEYS[3], ARGV[5]) then
  redis.call('ZREM', KEYS[3], ARGV[5])
  redis.call('ZADD', KEYS[4], 0, ARGV[5])
end
return old
`)

// unbindScript removes a session if its id matches; it returns 1 if it did.
// A node left without sessions leaves the set of nodes with sessions. The
// session's roster-requested flag goes with it; its directed-presence
// targets start their retention.
//
// KEYS: account, nodes with sessions, roster-requested hash, directed
// targets. ARGV: node set key prefix, bare JID, resourcepart, session id,
// retention in ms.
var unbindScript = redis.NewScript(luaLib + `
local cur = redis.call('HGET', KEYS[1], ARGV[3])
if not cur then return 0 end
local id, node = head(cur)
if id ~= ARGV[4] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[3])
redis.call('SREM', ARGV[1] .. node, ARGV[2] .. '\0' .. ARGV[3] .. '\0' .. id)
if redis.call('EXISTS', ARGV[1] .. node) == 0 then
  redis.call('SREM', KEYS[2], node)
end
if redis.call('HGET', KEYS[3], ARGV[3]) == id then redis.call('HDEL', KEYS[3], ARGV[3]) end
redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[5]))
return 1
`)

// rosterRequestedScript marks a session as having requested its roster if
// its id matches; it returns 1 if it did.
//
// KEYS: account, roster-requested hash. ARGV: resourcepart, session id.
var rosterRequestedScript = redis.NewScript(luaLib + `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or head(cur) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// updateDirectedScript adds a target to a bound session's directed
// presence (up to a limit), or removes it; it returns 1 if the session is
// bound.
//
// KEYS: account, directed targets. ARGV: resourcepart, session id, target,
// "1" to remove, most targets kept.
var updateDirectedScript = redis.NewScript(luaLib + `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or head(cur) ~= ARGV[2] then return 0 end
if ARGV[4] == '1' then
  redis.call('SREM', KEYS[2], ARGV[3])
elseif redis.call('SCARD', KEYS[2]) < tonumber(ARGV[5]) then
  redis.call('SADD', KEYS[2], ARGV[3])
end
return 1
`)

// takeDirectedScript returns a session's directed-presence targets and
// deletes them.
//
// KEYS: directed targets.
var takeDirectedScript = redis.NewScript(`
local t = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return t
`)

// setPresenceScript replaces the availability, priority and presence of a
// session if its id matches; it returns 1 if it did.
//
// KEYS: account. ARGV: resourcepart, session id, "available NUL priority
// NUL presence".
var setPresenceScript = redis.NewScript(luaLib + `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local id, node, j = head(cur)
if id ~= ARGV[2] then return 0 end
local k = string.find(cur, '\0', j + 1, true)
redis.call('HSET', KEYS[1], ARGV[1], string.sub(cur, 1, k) .. ARGV[3])
return 1
`)

// heartbeatScript sets a node's expiry to the server's time plus its TTL,
// forgets that it was dead, and returns its epoch, making a new one if the
// node has none (first heartbeat, or sessions dropped since).
//
// KEYS: live nodes, dead nodes, epochs, epoch counter. ARGV: node, TTL in ms.
var heartbeatScript = redis.NewScript(luaLib + `
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local e = redis.call('HGET', KEYS[3], ARGV[1])
if not e then
  e = redis.call('INCR', KEYS[4])
  redis.call('HSET', KEYS[3], ARGV[1], e)
end
return tonumber(e)
`)

// expiredScript lists nodes whose expiry is past, by the server's clock.
//
// KEYS: live nodes. ARGV: how many at most.
var expiredScript = redis.NewScript(luaLib + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
`)

// dropScript removes up to a batch of a node's sessions. Unless forced
// (DropNode), it does so only while the node's heartbeat is expired, so a
// node that came back in the meantime keeps the rest. It first deletes the
// node's epoch, so the node's next heartbeat tells it to bind again. Once
// the node's set is empty it moves the node from live to dead. It returns
// {done, bare, resource, value, bare, resource, value, ...}: done is "1"
// when nothing is left to remove for now.
//
// Each run carries a step key, unique to it: the reply is also kept there
// for stepTTL, and a run whose step key exists returns the kept reply and
// does nothing else. A client that lost a reply on the wire runs the step
// again with the same key and gets the sessions it removed, which would
// otherwise be announced by no one. A run deletes the previous step's key,
// whose reply its client has.
//
// A removed session's roster-requested flag goes with it; its
// directed-presence targets start their retention.
//
// KEYS: live nodes, dead nodes, epochs, node set, step, previous step,
// nodes with sessions.
// ARGV: node, batch size, "1" to force, account key prefix, tombstone
// retention in ms, step TTL in ms, roster-requested key prefix, directed
// key prefix, directed retention in ms.
var dropScript = redis.NewScript(luaLib + `
local kept = redis.call('LRANGE', KEYS[5], 0, -1)
if #kept > 0 then return kept end
redis.call('DEL', KEYS[6])
local now = now_ms()
if ARGV[3] ~= '1' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not score or tonumber(score) >= now then return {'1'} end
end
redis.call('HDEL', KEYS[3], ARGV[1])
local out = {'0'}
for _, m in ipairs(redis.call('SPOP', KEYS[4], tonumber(ARGV[2]))) do
  local i = string.find(m, '\0', 1, true)
  local j = string.find(m, '\0', i + 1, true)
  local bare, res, id = string.sub(m, 1, i - 1), string.sub(m, i + 1, j - 1), string.sub(m, j + 1)
  local key = ARGV[4] .. bare
  local cur = redis.call('HGET', key, res)
  if cur and head(cur) == id then
    redis.call('HDEL', key, res)
    if redis.call('HGET', ARGV[7] .. bare, res) == id then redis.call('HDEL', ARGV[7] .. bare, res) end
    redis.call('PEXPIRE', ARGV[8] .. bare .. '/' .. res .. '\0' .. id, tonumber(ARGV[9]))
    out[#out + 1] = bare
    out[#out + 1] = res
    out[#out + 1] = cur
  end
end
if redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('SREM', KEYS[7], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  out[1] = '1'
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
for k = 1, #out, 1000 do
  redis.call('RPUSH', KEYS[5], unpack(out, k, math.min(k + 999, #out)))
end
redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[6]))
return out
`)

// countScript returns {node, count, node, count, ...} for every node with
// sessions: the size of each node's set. The nodes are those of the set of
// nodes with sessions and, for sessions bound before that set was kept
// (an older version of this store), the nodes that send heartbeats.
//
// KEYS: nodes with sessions, live nodes. ARGV: node set key prefix.
var countScript = redis.NewScript(luaLib + `
local seen, out = {}, {}
local function add(node)
  if seen[node] then return end
  seen[node] = true
  local n = redis.call('SCARD', ARGV[1] .. node)
  if n > 0 then
    out[#out + 1] = node
    out[#out + 1] = tostring(n)
  end
end
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do add(node) end
for _, node in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do add(node) end
return out
`)
