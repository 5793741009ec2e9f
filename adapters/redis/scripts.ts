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

/** KEYS: live, lease of the node, owners, load. ARGV: callId, MAX_CALLS, node. */
export const RESERVE = `
if redis.call('EXISTS', KEYS[2]) == 0 then return 'node' end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 'conflict' end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 'capacity' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
return 'ok'
`;

/**
 * Placement and reservation in one step, so a burst of startups spreads instead of all reading the same
 * stats. KEYS: nodes, live, owners, load. ARGV: callId, MAX_CALLS, cores per call, key prefix, nodes to skip...
 * Score: the node's reported headroom less what its calls not yet in that measurement will cost.
 */
export const PLACE = `
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return {'conflict'} end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[2]) then return {'capacity'} end
local skip = {}
for i = 5, #ARGV do skip[ARGV[i]] = true end
local best, bestScore = nil, nil
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id = all[i]
  if not skip[id] and redis.call('EXISTS', ARGV[4] .. 'lease:' .. id) == 1 then
    local n = cjson.decode(all[i + 1])
    local load = tonumber(redis.call('HGET', KEYS[4], id) or '0')
    if load < n.max then
      local score = n.headroom - tonumber(ARGV[3]) * math.max(0, load - (n.covered or n.calls))
      if best == nil or score > bestScore then best = id; bestScore = score end
    end
  end
end
if not best then return {'full'} end
redis.call('HSET', KEYS[2], ARGV[1], best)
redis.call('HSET', KEYS[3], ARGV[1], best)
redis.call('HINCRBY', KEYS[4], best, 1)
return {'ok', best}
`;

/** KEYS: live, load, owners. ARGV: callId, node, forget ('1': the call never started, its callId is free again). */
export const RELEASE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) < 0 then redis.call('HSET', KEYS[2], ARGV[2], 0) end
  if ARGV[3] == '1' and redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[3], ARGV[1]) end
end
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
 * KEYS: nodes, lease of the lost node, live, calls, reaped, events, load, owners. ARGV: lost node, reaper, reason, now (ISO),
 * stream length. Whoever removes the node from `nodes` reports its live calls, once: marked in `reaped`, one
 * event each on the stream (the record as it was, for the hook). Returns the callIds, or nil when not this reaper's.
 */
export const REAP = `
if redis.call('EXISTS', KEYS[2]) == 1 then return nil end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return nil end
redis.call('HDEL', KEYS[7], ARGV[1])
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
-- Its calls that had ended already: forgotten now (their node, which would have, is gone).
local owners = redis.call('HGETALL', KEYS[8])
for i = 1, #owners, 2 do
  local id = owners[i]
  if owners[i + 1] == ARGV[1] and redis.call('HEXISTS', KEYS[5], id) == 0 then
    redis.call('HDEL', KEYS[8], id); redis.call('HDEL', KEYS[4], id)
  end
end
return out
`;

/**
 * KEYS: nodes, lease, live, load, owners, calls, reaped. ARGV: node. A node leaving on purpose (its calls
 * ended): all of it goes, and the records of lost nodes' calls it reported.
 */
export const LEAVE = `
redis.call('HDEL', KEYS[1], ARGV[1]); redis.call('DEL', KEYS[2]); redis.call('HDEL', KEYS[4], ARGV[1])
local live = redis.call('HGETALL', KEYS[3])
for i = 1, #live, 2 do if live[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[3], live[i]) end end
local owners = redis.call('HGETALL', KEYS[5])
for i = 1, #owners, 2 do
  if owners[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[5], owners[i]); redis.call('HDEL', KEYS[6], owners[i]); redis.call('HDEL', KEYS[7], owners[i])
  end
end
-- The lost nodes' calls it reported (shown FAILED until it would have dropped them): dropped now.
local reaped = redis.call('HGETALL', KEYS[7])
for i = 1, #reaped, 2 do
  if cjson.decode(reaped[i + 1]).by == ARGV[1] then
    redis.call('HDEL', KEYS[5], reaped[i]); redis.call('HDEL', KEYS[6], reaped[i]); redis.call('HDEL', KEYS[7], reaped[i])
  end
end
return 0
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
