/**
 * The registry's atomic steps, as Lua run inside Redis: each reads and writes in one step, so two nodes
 * never both take the last place, both take one callId, or both report a lost node's calls.
 * Keys are named in redis-registry.ts. Views stay opaque strings here (cjson would turn [] into {}).
 */

/** KEYS: nodes, lease, epoch. ARGV: id, info JSON, lease ms, known epoch ('' when joining), new epoch. */
export const HEARTBEAT = `
local epoch = redis.call('GET', KEYS[3])
if not epoch then redis.call('SET', KEYS[3], ARGV[5]); epoch = ARGV[5] end
local known = ARGV[4]
if known ~= '' and epoch ~= known then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  return {'reset', epoch}
end
if known ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'fenced', epoch} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return {'ok', epoch}
`;

/** KEYS: live, lease of the node, owners. ARGV: callId, MAX_CALLS, node. */
export const RESERVE = `
if redis.call('EXISTS', KEYS[2]) == 0 then return 'node' end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 'conflict' end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 'capacity' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 'ok'
`;

/** KEYS: live. ARGV: callId, node. Only the owner's place goes. */
export const RELEASE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;

/** KEYS: nodes, calls, owners. ARGV: node, then callId, record pairs. A node that was reaped writes nothing. */
export const PUT = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[1] then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 1
`;

/** KEYS: calls, owners, reaped. ARGV: node, then callIds. */
export const DROP = `
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], ARGV[i]); redis.call('HDEL', KEYS[2], ARGV[i]); redis.call('HDEL', KEYS[3], ARGV[i])
  end
end
return 0
`;

/**
 * KEYS: nodes, lease of the lost node, live, calls, reaped, events. ARGV: lost node, reaper, reason, now (ISO),
 * stream length. Whoever removes the node from `nodes` reports its live calls, once: marked in `reaped`, one
 * event each on the stream (the record as it was, for the hook). Returns the callIds, or nil when not this reaper's.
 */
export const REAP = `
if redis.call('EXISTS', KEYS[2]) == 1 then return nil end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return nil end
local out = {}
local live = redis.call('HGETALL', KEYS[3])
for i = 1, #live, 2 do
  if live[i + 1] == ARGV[1] then
    local id = live[i]
    redis.call('HDEL', KEYS[3], id)
    local raw = redis.call('HGET', KEYS[4], id)
    if raw then
      redis.call('HSET', KEYS[5], id, cjson.encode({ node = ARGV[1], by = ARGV[2], info = ARGV[3], at = ARGV[4] }))
      redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'lost', 'callId', id, 'record', raw,
        'node', ARGV[1], 'by', ARGV[2], 'info', ARGV[3], 'at', ARGV[4])
    end
    table.insert(out, id)
  end
end
return out
`;

/** KEYS: the bucket. ARGV: rate per second, burst. Redis's clock, so every node shares one bucket. 0 or ms to wait. */
export const TAKE_TOKEN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1]); local burst = tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(s[1]) or burst
local at = tonumber(s[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
if tokens < 1 then return math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 60000)
return 0
`;
