-- acquire.lua: take a slot of an account's shared rate limiter (GCRA), now or a little ahead, in line.
--
-- The twin of MemoryStore.acquire and gcra (workers/limiter/); one test table checks both.
--
-- KEYS[1]  dropq:limiter:{account}  string: the theoretical arrival time (TAT), microseconds: the next free slot
-- KEYS[2]  dropq:cooldown:{account} hash: until (ms), strikes            (read only here)
-- KEYS[3]  dropq:rate:{account}     hash: factor (ppm of the rate), at (ms, when it was lowered) (read only)
-- KEYS[4]  dropq:limiter-first:{account} sorted set: the first lane's line (member: request id, score: its slot, us)
-- KEYS[5]  dropq:limiter-bulk:{account}  sorted set: the bulk lane's line, likewise
--
-- ARGV[1]  cost                  requests this grant stands for (integer >= 1)
-- ARGV[2]  base_interval_us      emission interval at full rate, safety margin applied
-- ARGV[3]  tolerance_us          how long before its slot a request may use it
-- ARGV[4]  recovery_ppm_per_s    how fast the adaptive factor climbs back to 1e6
-- ARGV[5]  now_ms                optional; empty = the server's clock (TIME). Tests pass it.
-- ARGV[6]  lane                  "first" or "bulk"; anything else: no lane (the limiter alone)
-- ARGV[7]  request id            the same over a request's retries; empty: not in any line
-- ARGV[8]  horizon_us            how far ahead a slot may be reserved (0: only a slot open now)
-- ARGV[9]  missed                "1": the request held a slot and missed it (its thread woke too late);
--                                it asks again as one due in line, not as a newcomer (empty: no)
--
-- Reservation: a request whose slot opens within the horizon takes it now and is told how long to wait
-- before sending (delay_ms); it does not ask again, so a crowd of requests never races for each slot.
-- During a cooldown the slot is one after it ends; the caller checks the cooldown again before sending.
--
-- Lines: a request with an id that cannot take a slot (beyond the horizon, after a cooldown too far away,
-- the first lane waiting) is promised one, after the last promised in its lane's line, and told to come back
-- LINE_LEAD_MS before it: each is told its own time, so N waiting requests ask about once each instead
-- of N times per slot. Back (at or after its return time, up to LINE_GRACE_MS past its slot) it takes
-- the next free slot within the horizon, or is promised one at the end of the line again. A request that
-- comes before its return time keeps its place (told the time left), unless a slot is free before the
-- next promise still to come, which any request may take (a gap nobody was promised). Bulk requests
-- neither reserve nor fill gaps while the first lane has a request in line: it goes first. A request
-- that missed the slot it held asks again as one due in line: the next free slot within its horizon, not
-- the end of the line (which would cost it the whole line's wait for a few milliseconds of lateness).
--
-- Returns {allowed (1|0), retry_after_ms (0 when allowed), clock_us (the time the decision used),
--          delay_ms (when allowed: the wait before sending, 0 = now)}.
--
-- TTL: KEYS[1] is written only on a grant, with PEXPIRE = time until the TAT is in the past + 1 s; a
-- line lives 1 s past its last promise plus its grace (never shortened); members past their grace are
-- dropped on every call. Expired means what absent means. KEYS[2] and KEYS[3] are written by feedback.lua.
local PPM = 1000000
-- A request in line is told to come back this long before its slot (gcra.LINE_LEAD_MS).
local LINE_LEAD_US = 100000
-- A promise is kept this long past its slot for a request that comes back late (gcra.LINE_GRACE_MS).
local LINE_GRACE_US = 1000000

local now_us
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  now_us = tonumber(ARGV[5]) * 1000
else
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local now_ms = math.floor(now_us / 1000)

local function ceil_div(a, b)
  return math.floor((a + b - 1) / b)
end

local cost = tonumber(ARGV[1])
local tolerance_us = tonumber(ARGV[3])
local lane = ARGV[6] or ''
local rid = ARGV[7] or ''
local horizon_us = tonumber(ARGV[8] or '0') or 0

local until_ms = tonumber(redis.call('HGET', KEYS[2], 'until'))
local cooling = until_ms ~= nil and now_ms < until_ms

local factor = PPM
local rate = redis.call('HMGET', KEYS[3], 'factor', 'at')
if rate[1] then
  local elapsed = math.max(0, now_ms - tonumber(rate[2]))
  factor = math.min(PPM, tonumber(rate[1]) + math.floor(elapsed * tonumber(ARGV[4]) / 1000))
end
local interval_us = ceil_div(tonumber(ARGV[2]) * PPM, factor)

local lined = lane == 'first' or lane == 'bulk'
local line = nil
if lined then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. string.format('%d', now_us - LINE_GRACE_US))
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. string.format('%d', now_us - LINE_GRACE_US))
  if rid ~= '' then
    line = (lane == 'first') and KEYS[4] or KEYS[5]
  end
end

-- The slot this request would take: the next free one (never before the cooldown ends).
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tat, now_us)
if cooling then
  start = math.max(start, until_ms * 1000)
end
local new_tat = start + cost * interval_us
local send_at = math.max(now_us, start - tolerance_us)
if cooling then
  -- A slot reserved during a cooldown is used after it ends, not within the tolerance before.
  send_at = math.max(send_at, until_ms * 1000)
end

local promised = nil
if line then
  promised = tonumber(redis.call('ZSCORE', line, rid))
  if promised == nil and ARGV[9] == '1' then
    promised = now_us
  end
end
local first_waits = lane == 'bulk' and redis.call('ZCARD', KEYS[4]) > 0
local early = promised ~= nil and now_us < promised - LINE_LEAD_US

-- The next promise in this lane's line whose request is not back yet (told to come after now).
local function next_promise()
  local got = redis.call('ZRANGEBYSCORE', KEYS[lane == 'first' and 4 or 5],
    '(' .. string.format('%d', now_us + LINE_LEAD_US), '+inf', 'WITHSCORES', 'LIMIT', 0, 2)
  for i = 1, #got, 2 do
    if got[i] ~= rid then
      return tonumber(got[i + 1])
    end
  end
  return nil
end

local ok = send_at - now_us <= horizon_us and not first_waits
if ok and lined and (promised == nil or early) then
  -- Not in line, or early: only a gap before the next promise still to come.
  local nxt = next_promise()
  ok = nxt == nil or new_tat <= nxt + tolerance_us
end

if ok then
  if line then
    redis.call('ZREM', line, rid)
  end
  -- %d: Lua would print a 16-digit number in %.14g and lose the microseconds.
  redis.call('SET', KEYS[1], string.format('%d', new_tat),
    'PX', string.format('%d', ceil_div(new_tat - now_us, 1000) + 1000))
  return {1, 0, now_us, ceil_div(send_at - now_us, 1000)}
end

if not line then
  -- No line: come back when the slot is within the horizon (or the cooldown is over).
  local wait_ms
  if first_waits and not cooling then
    wait_ms = ceil_div(interval_us, 1000)
  else
    wait_ms = ceil_div(start - tolerance_us - horizon_us - now_us, 1000)
    if cooling then
      wait_ms = math.max(wait_ms, until_ms - now_ms)
    end
  end
  return {0, math.max(1, wait_ms), now_us, 0}
end

if early then
  return {0, math.max(1, ceil_div(promised - LINE_LEAD_US - now_us, 1000)), now_us, 0}
end

-- A promise at the end of the line (after the first lane's, for a bulk request).
redis.call('ZREM', line, rid)
local slot = start
local last = redis.call('ZRANGE', line, -1, -1, 'WITHSCORES')
if last[2] then
  slot = math.max(slot, tonumber(last[2]) + interval_us)
end
if lane == 'bulk' then
  local last_first = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
  if last_first[2] then
    slot = math.max(slot, tonumber(last_first[2]) + interval_us)
  end
end
redis.call('ZADD', line, string.format('%d', slot), rid)
local ttl_ms = ceil_div(slot + LINE_GRACE_US - now_us, 1000) + 1000
if redis.call('PTTL', line) < ttl_ms then
  redis.call('PEXPIRE', line, ttl_ms)
end
return {0, math.max(1, ceil_div(slot - LINE_LEAD_US - now_us, 1000)), now_us, 0}
