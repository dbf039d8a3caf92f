-- share.lua: seal a shared request out of a pool: several jobs' batches, one POST.
--
-- The candidates (oldest first, chosen by the caller to fit one request) are
-- checked again here: each must still be in the pool, pending and pooled. The
-- ones taken become "carried" by the new shared request, whose records are
-- theirs end to end; their watch passes to it (its own watch covers them all).
-- A lone survivor is not worth a shared request: it leaves the pool to be
-- sent alone ("solo"). Candidates found gone or moved on leave the pool.
--
-- KEYS[1] pool sorted set     dropq:pool:{options}
-- KEYS[2] pool sizes hash     dropq:pool-sizes:{options}
-- KEYS[3] shared request hash dropq:batch:{shared id}
-- KEYS[4] its records string  dropq:batch-records:{shared id}
-- KEYS[5] watchdog sorted set dropq:watchdog
-- KEYS[6..] per candidate: its batch hash, then its records string
-- ARGV[1] the shared request's id
-- ARGV[2] now, milliseconds (Redis time)
-- ARGV[3] TTL, seconds
-- ARGV[4] the shared request's watchdog deadline, milliseconds
-- ARGV[5] the shared request's watchdog member
-- ARGV[6] siren ("1"/"0")
-- ARGV[7] language ("" for the API's default)
-- ARGV[8] most records in one request
-- ARGV[9..] per candidate: its batch id, then its watchdog member
-- Returns {2, shared id} when sealed, {1, batch id, seq} when one batch alone was left (send it
-- alone), {0} when no candidate was left.
-- TTL: every key written gets ARGV[3].

local ttl = tonumber(ARGV[3])
local most = tonumber(ARGV[8])
local taken = {}
local total = 0
local lane = 'bulk'
local n = (#KEYS - 5) / 2
for i = 1, n do
  local id, watch = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  local hash, records = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  if redis.call('ZSCORE', KEYS[1], id) then
    local f = redis.call('HMGET', hash, 'state', 'pooled', 'count', 'seq', 'lane', 'carrier')
    local body = redis.call('GET', records)
    if f[1] ~= 'pending' or f[2] ~= '1' or (f[6] and f[6] ~= '') or not body then
      -- Gone (expired) or moved on: it has nothing more to do in the pool.
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
    elseif total + tonumber(f[3]) <= most then
      total = total + tonumber(f[3])
      taken[#taken + 1] = {id = id, watch = watch, hash = hash, records = records, seq = f[4], body = body}
      if f[5] == 'first' then
        lane = 'first'
      end
    end
  end
end
if #taken == 0 then
  return {0}
end
for _, m in ipairs(taken) do
  redis.call('ZREM', KEYS[1], m.id)
  redis.call('HDEL', KEYS[2], m.id)
end
if #taken == 1 then
  local m = taken[1]
  redis.call('HDEL', m.hash, 'pooled')
  redis.call('HSET', m.hash, 'solo', 1)
  redis.call('EXPIRE', m.hash, ttl)
  return {1, m.id, tonumber(m.seq)}
end
local bodies, ids = {}, {}
for i, m in ipairs(taken) do
  -- Each body is a JSON array of records: their insides joined make one array.
  bodies[i] = string.sub(m.body, 2, -2)
  ids[i] = m.id
  redis.call('HDEL', m.hash, 'pooled')
  redis.call('HSET', m.hash, 'state', 'carried', 'carrier', ARGV[1])
  redis.call('EXPIRE', m.hash, ttl)
  redis.call('EXPIRE', m.records, ttl)
  redis.call('ZREM', KEYS[5], m.watch)
end
redis.call('SET', KEYS[4], '[' .. table.concat(bodies, ',') .. ']', 'EX', ttl)
redis.call('HSET', KEYS[3], 'job_id', '', 'state', 'pending', 'count', total, 'seq', 0, 'errors', 0,
  'polls', 0, 'created_ms', ARGV[2], 'lane', lane, 'members', table.concat(ids, ','), 'siren', ARGV[6],
  'language', ARGV[7])
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('ZADD', KEYS[5], tonumber(ARGV[4]), ARGV[5])
return {2, ARGV[1]}
